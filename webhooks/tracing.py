"""OpenTelemetry traces, for a host that traces (``pip install django-webhooks-outbox[otel]``).

Only ``opentelemetry-api`` is used: the host configures the SDK (a ``TracerProvider``, its
exporters) as it does for its own spans. Three kinds of span:

- ``webhooks publish <event type>`` (PRODUCER): writing the event, a child of the host's
  span current at the save or ``send_event``; only while a trace is active. Its context
  is stored with the event (``Event.trace_context``), in the same INSERT;
- ``webhooks fan-out`` (CONSUMER): a worker's fan-out of a batch of events and the first
  attempts sent with it, linked to the span of each event it fans out;
- ``POST`` (CLIENT): one HTTP attempt, the HTTP client semantic conventions, linked to the
  span of its event; a child of the fan-out span for first attempts.

Without the API, or with the API but no SDK configured, every hook is one check of a
cached value. Tracing never breaks a save or a delivery: its own errors are logged and
the work goes on. Trace context goes to receivers only with
``WEBHOOKS_PROPAGATE_TRACE_CONTEXT``; otherwise an HTTP auto-instrumentation the host
installed (urllib3, requests) is suppressed around our requests, so it cannot add it.
"""

from __future__ import annotations

import functools
import logging
import time
from contextvars import ContextVar
from urllib.parse import urlsplit

from .conf import conf

try:
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.trace import Link, SpanKind, StatusCode
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError:  # the optional extra is not installed: every hook is a no-op
    trace = None

logger = logging.getLogger("webhooks")

SYSTEM = "webhooks"
#: Longest stored trace context (``Event.trace_context``): a longer ``tracestate`` is dropped.
TRACE_CONTEXT_LIMIT = 600

_state: dict = {"provider": None, "tracer": None}


def set_tracer_provider(provider) -> None:
    """Trace with ``provider`` rather than OpenTelemetry's global one (None: the global).

    For tests, and hosts that keep a provider of their own instead of setting the global.
    """
    _state["provider"], _state["tracer"] = provider, None


def tracer():
    """The webhooks tracer, or None when nothing would record: no API, or no SDK set up.

    Looked up until the host sets a real provider, then kept (OpenTelemetry's global
    provider is set once per process).
    """
    found = _state["tracer"]
    if found is not None or trace is None:
        return found
    provider = _state["provider"] or trace.get_tracer_provider()
    if isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        return None
    from .delivery import package_version

    found = _state["tracer"] = provider.get_tracer("webhooks", package_version())
    return found


_warned: set = set()


def _failed(what: str) -> None:
    """Log an instrumentation error once per kind and process; the work goes on."""
    if what not in _warned:
        _warned.add(what)
        logger.warning("Tracing failed (%s); traces may be incomplete.", what, exc_info=True)


# -- the event: a span in the host's trace, its context stored with the row --------------


def publishes(write):
    """Decorate the function writing an event row: the write runs in a PRODUCER span,
    whose W3C context is put in ``row["trace_context"]`` for the INSERT to store."""

    @functools.wraps(write)
    def traced_write(row):
        found = tracer()
        if found is None:
            return write(row)
        span = token = None
        try:
            if trace.get_current_span().get_span_context().is_valid:  # the host is tracing
                span = found.start_span(
                    f"webhooks publish {row['type']}",
                    kind=SpanKind.PRODUCER,
                    attributes={
                        "messaging.system": SYSTEM,
                        "messaging.operation.type": "send",
                        "messaging.operation.name": "publish",
                        "messaging.destination.name": row["type"],
                        "messaging.message.id": str(row["id"]),
                    },
                )
                stored = trace_context_of(span)
                if stored:
                    row["trace_context"] = stored
                token = otel_context.attach(trace.set_span_in_context(span))
        except Exception:  # noqa: BLE001 - tracing must never fail a save
            _failed("publish span")
        try:
            return write(row)
        except BaseException as exc:
            _end(span, token, exc)
            raise
        finally:
            _end(span, token)

    return traced_write


def trace_context_of(span) -> str | None:
    """``traceparent`` (then ``,tracestate``) of a sampled span, else None (nothing stored)."""
    ctx = span.get_span_context()
    if not (ctx.is_valid and ctx.trace_flags.sampled):
        return None
    value = f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"
    state = ctx.trace_state.to_header() if ctx.trace_state else ""
    if state and len(value) + 1 + len(state) <= TRACE_CONTEXT_LIMIT:
        value = f"{value},{state}"  # a traceparent holds no comma
    return value


_w3c = TraceContextTextMapPropagator() if trace is not None else None


def event_link(event):
    """The link to the span that wrote ``event``, or None (not traced, or unreadable)."""
    cached = event.__dict__.get("_webhooks_link", False)
    if cached is not False:
        return cached
    link = None
    stored = event.trace_context
    if stored:
        parent, _, state = stored.partition(",")
        carrier = {"traceparent": parent, "tracestate": state} if state else {"traceparent": parent}
        ctx = trace.get_current_span(_w3c.extract(carrier)).get_span_context()
        link = Link(ctx) if ctx.is_valid else None
    event.__dict__["_webhooks_link"] = link  # deliveries of one event share it
    return link


def _end(span, token, exc: BaseException | None = None) -> None:
    if span is None:
        return
    try:
        if exc is not None:
            span.set_status(StatusCode.ERROR, type(exc).__name__)
            span.set_attribute("error.type", type(exc).__qualname__)
            return  # ended by the ``finally`` that follows
        if token is not None:
            otel_context.detach(token)
        span.end()
    except Exception:  # noqa: BLE001 - never raise into the host's save or the worker
        _failed("ending a span")


# -- the fan-out: a span linked to each event's span -------------------------------------

_fan_out: ContextVar = ContextVar("webhooks_fan_out", default=None)


class _FanOut:
    """A fan-out task's span, started once its events are known (their links are needed at
    the start, for samplers), with the time the task started."""

    def __init__(self, found) -> None:
        self.tracer, self.started = found, time.time_ns()
        self.span = self.token = None

    def start(self, deliveries) -> None:
        events = {d.event_id: d.event for d in deliveries}
        links = [link for link in map(event_link, events.values()) if link is not None]
        self.span = self.tracer.start_span(
            "webhooks fan-out",
            kind=SpanKind.CONSUMER,
            links=links,
            start_time=self.started,
            attributes={
                "messaging.system": SYSTEM,
                "messaging.operation.type": "process",
                "messaging.operation.name": "fan-out",
                "messaging.batch.message_count": len(events),
                "webhooks.deliveries": len(deliveries),
            },
        )
        self.token = otel_context.attach(trace.set_span_in_context(self.span))


def fan_out_task(func):
    """Decorate the fan-out task: ``fanned_out`` starts its span, the task's end ends it."""

    @functools.wraps(func)
    def traced_task(*args, **kwargs):
        found = tracer()
        if found is None:
            return func(*args, **kwargs)
        pending = _FanOut(found)
        var_token = _fan_out.set(pending)
        try:
            return func(*args, **kwargs)
        except BaseException as exc:
            _end(pending.span, pending.token, exc)
            raise
        finally:
            _end(pending.span, pending.token)
            _fan_out.reset(var_token)

    return traced_task


def fanned_out(deliveries) -> None:
    """The fan-out of a traced task made these deliveries: start its span, linked (a task
    that found nothing to fan out makes no span)."""
    pending = _fan_out.get()
    if deliveries and pending is not None and pending.span is None:
        try:
            pending.start(deliveries)
        except Exception:  # noqa: BLE001 - never fail the fan-out
            _failed("fan-out span")


# -- the attempts: one CLIENT span per HTTP request --------------------------------------


def _suppress_keys() -> list:
    """The context keys that switch off HTTP auto-instrumentations (all API versions)."""
    keys = ["suppress_instrumentation"]  # the plain key older instrumentations read
    for module in ("opentelemetry.context", "opentelemetry.instrumentation.utils"):
        try:
            imported = __import__(module, fromlist=["_"])
        except ImportError:
            continue
        for name in ("_SUPPRESS_INSTRUMENTATION_KEY", "_SUPPRESS_HTTP_INSTRUMENTATION_KEY"):
            key = getattr(imported, name, None)
            if key is not None and key not in keys:
                keys.append(key)
    return keys


@functools.cache
def _quiet_keys() -> tuple:
    return tuple(_suppress_keys())


def _quiet(ctx):
    for key in _quiet_keys():
        ctx = otel_context.set_value(key, True, ctx)
    return ctx


def sender(post, trigger: str):
    """What a batch calls for each request, ``send(request, delivery) -> Outcome``: ``post``
    inside an attempt span when tracing, with HTTP auto-instrumentation suppressed.

    Called in the dispatching thread: its current span (the fan-out's) is the parent of
    the attempt spans, which run in the request threads.
    """
    if trace is None:
        return lambda request, delivery: post(request)
    try:
        found = tracer()
        parent = otel_context.get_current()
        quiet = _quiet(parent)
        propagate = conf.PROPAGATE_TRACE_CONTEXT
    except Exception:  # noqa: BLE001 - send untraced rather than not at all
        _failed("attempt spans")
        return lambda request, delivery: post(request)

    def send(request, delivery):
        span = None
        ctx = quiet
        if found is not None:
            try:
                span = _start_attempt(found, parent, request, delivery, trigger)
                if propagate:
                    ctx = trace.set_span_in_context(span, quiet)
                    carrier: dict = {}
                    _w3c.inject(carrier, context=ctx)
                    if carrier:  # the attempt log shows what was sent
                        request.headers = {**request.headers, **carrier}
            except Exception:  # noqa: BLE001 - never fail the delivery
                _failed("attempt span")
        try:
            token = otel_context.attach(ctx)
        except Exception:  # noqa: BLE001
            token = None
            _failed("suppressing HTTP instrumentation")
        try:
            outcome = post(request)
        finally:
            if token is not None:
                otel_context.detach(token)
        if span is not None:
            try:
                _finish_attempt(span, outcome)
            except Exception:  # noqa: BLE001
                _failed("attempt span")
        return outcome

    return send


@functools.lru_cache(maxsize=1024)
def safe_url(url: str) -> dict:
    """``url.full``, ``server.address`` and ``server.port`` for a receiver's URL, with no
    secret: no user name or password, no query, and the path redacted (many receivers,
    chat and automation hooks among them, carry their token in the path)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    shown = f"[{host}]" if ":" in host else host
    if parts.port:
        shown = f"{shown}:{parts.port}"
    path = parts.path if parts.path in ("", "/") else "/REDACTED"
    return {
        "url.full": f"{parts.scheme}://{shown}{path}",
        "url.scheme": parts.scheme,
        "server.address": host,
        "server.port": port,
    }


def _start_attempt(found, parent, request, delivery, trigger):
    event = delivery.event
    link = event_link(event)
    attributes = {
        "http.request.method": "POST",
        **safe_url(request.url),  # a copy: the cached dict stays as it is
        "webhooks.webhook_id": str(delivery.subscription_id),
        "webhooks.delivery_id": str(delivery.pk),
        "webhooks.attempt": delivery.attempt_count + 1,
        "webhooks.trigger": str(trigger),
        "webhooks.event_type": event.type,
        "webhooks.event_id": str(event.pk),
        "messaging.message.id": delivery.webhook_id,
    }
    if event.scope:
        attributes["webhooks.scope"] = event.scope
    return found.start_span(
        "POST",
        context=parent,
        kind=SpanKind.CLIENT,
        links=[link] if link is not None else None,
        attributes=attributes,
    )


#: Error kinds that are an HTTP status (``error.type`` is then the status, as the
#: conventions say); the others are named by their kind (``timeout``, ``connection_refused``…).
_STATUS_KINDS = {"http_4xx", "http_5xx", "http_other", "redirect"}


def _finish_attempt(span, outcome) -> None:
    if span.is_recording():
        attributes = {}
        if outcome.status_code is not None:
            attributes["http.response.status_code"] = outcome.status_code
        if not outcome.succeeded:
            kind = outcome.error_kind or "other"
            error = str(outcome.status_code) if kind in _STATUS_KINDS else kind
            attributes["error.type"] = error
            attributes["webhooks.error_kind"] = kind
            # Never the error's message: a TLS or connection error may quote the URL.
            span.set_status(StatusCode.ERROR, error)
        span.set_attributes(attributes)
    span.end()
