"""OpenTelemetry: the event's span in the host's trace, linked fan-out and attempt spans,
and trace context kept from receivers unless the operator opts in."""

import base64
import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("opentelemetry.sdk", reason="the dev extra installs the OpenTelemetry SDK")

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import webhooks
from tests.receiver import Answer
from tests.testapp.models import Article
from webhooks import dispatch, outbox, tracing
from webhooks.models import Delivery, DeliveryAttempt, Event

pytestmark = pytest.mark.django_db


class Traced:
    """The host's tracing: its provider (used by webhooks too) and what was exported."""

    def __init__(self, *processors) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        for processor in processors:
            self.provider.add_span_processor(processor)
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.host = self.provider.get_tracer("host")

    def spans(self, kind=None, name=None):
        return [
            s
            for s in self.exporter.get_finished_spans()
            if (kind is None or s.kind == kind) and (name is None or s.name.startswith(name))
        ]

    def one(self, kind):
        [span] = self.spans(kind)
        return span


@pytest.fixture
def traced():
    # A provider handed to webhooks explicitly: the global one can be set once per process.
    t = Traced()
    tracing.set_tracer_provider(t.provider)
    yield t
    tracing.set_tracer_provider(None)


def traceparent(span) -> str:
    ctx = span.get_span_context()
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


def save_in_host_request(traced, commit, **fields):
    """A save inside the host's request span; the workers run after the commit (sync mode)."""
    with commit():
        with traced.host.start_as_current_span("POST /articles") as request_span:
            Article.objects.create(title="hello", **fields)
    return request_span


def test_event_span_is_a_child_of_the_hosts_span_and_its_context_is_stored(
    traced, commit, receiver, subscribe
):
    subscribe(receiver, ["article.created"])
    request_span = save_in_host_request(traced, commit)
    publish = traced.one(SpanKind.PRODUCER)
    event = Event.objects.get()
    assert publish.name == "webhooks publish article.created"
    assert publish.context.trace_id == request_span.get_span_context().trace_id
    assert publish.parent.span_id == request_span.get_span_context().span_id
    assert publish.attributes["messaging.system"] == "webhooks"
    assert publish.attributes["messaging.destination.name"] == "article.created"
    assert publish.attributes["messaging.message.id"] == str(event.pk)
    assert event.trace_context == traceparent(publish)


def test_send_event_is_traced_in_the_callers_span(traced, commit):
    with commit():
        with traced.host.start_as_current_span("invite") as caller:
            event = webhooks.send_event("article.shared", {"email": "a@b.c"}, scope="acme")
    publish = traced.one(SpanKind.PRODUCER)
    assert publish.parent.span_id == caller.get_span_context().span_id
    assert event.trace_context == traceparent(publish)  # the returned event has it too
    assert Event.objects.get().trace_context == traceparent(publish)


def test_tracestate_is_kept_with_the_event(traced, commit):
    from opentelemetry.trace import (
        NonRecordingSpan,
        SpanContext,
        TraceFlags,
        TraceState,
        set_span_in_context,
    )

    upstream = SpanContext(
        trace_id=0x1234,
        span_id=0x5678,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
        trace_state=TraceState([("vendor", "abc")]),
    )
    with commit():
        ctx = set_span_in_context(NonRecordingSpan(upstream))
        with traced.host.start_as_current_span("request", context=ctx):
            event = webhooks.send_event("article.shared", {})
    publish = traced.one(SpanKind.PRODUCER)
    assert event.trace_context == f"{traceparent(publish)},vendor=abc"
    link = tracing.event_link(Event.objects.get())
    assert link.context.span_id == publish.context.span_id
    assert link.context.trace_state.get("vendor") == "abc"


def test_without_an_active_trace_nothing_is_stored_and_no_event_span(
    traced, commit, receiver, subscribe
):
    subscribe(receiver, ["article.created"])
    with commit():
        Article.objects.create(title="hello")  # a management command, not traced
    assert Event.objects.get().trace_context is None
    assert traced.spans(SpanKind.PRODUCER) == []
    attempt = traced.one(SpanKind.CLIENT)  # the worker still traces its own work
    assert list(attempt.links) == []


def test_without_a_configured_sdk_tracing_is_the_no_op(commit, receiver, subscribe):
    subscribe(receiver, ["article.created"])
    assert tracing.tracer() is None  # the API is installed, no provider is set
    with commit():
        Article.objects.create(title="hello")
    assert Event.objects.get().trace_context is None
    assert Delivery.objects.get().status == Delivery.Status.SUCCEEDED


@pytest.mark.usefixtures("no_plan_gate")
def test_fan_out_and_attempt_spans_link_to_the_event_span(traced, commit, receiver, subscribe):
    sub = subscribe(receiver, ["article.created"], scope="acme")
    save_in_host_request(traced, commit, tenant="acme")
    publish = traced.one(SpanKind.PRODUCER)
    fan_out = traced.one(SpanKind.CONSUMER)
    attempt = traced.one(SpanKind.CLIENT)
    delivery = Delivery.objects.get()
    event = delivery.event

    assert fan_out.name == "webhooks fan-out"
    assert [link.context.span_id for link in fan_out.links] == [publish.context.span_id]
    assert fan_out.attributes["messaging.batch.message_count"] == 1
    assert fan_out.context.trace_id != publish.context.trace_id  # the worker's own trace

    assert attempt.name == "POST"
    assert attempt.parent.span_id == fan_out.context.span_id
    assert [link.context.span_id for link in attempt.links] == [publish.context.span_id]
    assert attempt.status.status_code == StatusCode.UNSET
    assert dict(attempt.attributes) == {
        "http.request.method": "POST",
        "url.full": f"http://127.0.0.1:{receiver.port}/REDACTED",
        "url.scheme": "http",
        "server.address": "127.0.0.1",
        "server.port": receiver.port,
        "http.response.status_code": 200,
        "webhooks.webhook_id": str(sub.pk),
        "webhooks.delivery_id": str(delivery.pk),
        "webhooks.attempt": 1,
        "webhooks.trigger": "automatic",
        "webhooks.event_type": "article.created",
        "webhooks.event_id": str(event.pk),
        "webhooks.scope": "acme",
        "messaging.message.id": delivery.webhook_id,
    }


def test_one_fan_out_span_links_every_event_of_its_batch(
    traced, receiver, other_receiver, subscribe
):
    subscribe(receiver, ["article.shared"])
    subscribe(other_receiver, ["article.shared"])
    with traced.host.start_as_current_span("first"):
        first = webhooks.send_event("article.shared", {"n": 1})
    with traced.host.start_as_current_span("second"):
        second = webhooks.send_event("article.shared", {"n": 2})
    dispatch.process_events([first.pk, second.pk])  # one worker task, two events

    publishes = {s.attributes["messaging.message.id"]: s for s in traced.spans(SpanKind.PRODUCER)}
    fan_out = traced.one(SpanKind.CONSUMER)
    linked = {link.context.span_id for link in fan_out.links}
    assert linked == {publishes[str(e.pk)].context.span_id for e in (first, second)}
    attempts = traced.spans(SpanKind.CLIENT)  # 4 requests, sent from the request threads
    assert len(attempts) == 4 == len(receiver.requests) + len(other_receiver.requests)
    for span in attempts:
        assert span.parent.span_id == fan_out.context.span_id
        event_id = span.attributes["webhooks.event_id"]
        assert [link.context.span_id for link in span.links] == [
            publishes[event_id].context.span_id
        ]


def test_events_handed_out_by_the_outbox_broker_keep_their_links(traced, receiver, subscribe):
    from webhooks.broker import claim_events

    subscribe(receiver, ["article.shared"])
    with traced.host.start_as_current_span("request"):
        event = webhooks.send_event("article.shared", {})
    ids = claim_events(10)  # what the outbox broker's pusher hands a worker
    assert ids == [event.pk]
    dispatch.process_events([str(pk) for pk in ids])
    publish = traced.one(SpanKind.PRODUCER)
    for span in (traced.one(SpanKind.CONSUMER), traced.one(SpanKind.CLIENT)):
        assert [link.context.span_id for link in span.links] == [publish.context.span_id]


def test_500_attempt_is_an_error_span_and_its_retry_is_linked_too(
    traced, commit, receiver, subscribe, run_due
):
    subscribe(receiver, ["article.created"])
    receiver.answer(Answer(500, "boom"))
    save_in_host_request(traced, commit)
    publish = traced.one(SpanKind.PRODUCER)
    failed = traced.one(SpanKind.CLIENT)
    assert failed.status.status_code == StatusCode.ERROR
    assert failed.attributes["http.response.status_code"] == 500
    assert failed.attributes["error.type"] == "500"
    assert failed.attributes["webhooks.error_kind"] == "http_5xx"

    traced.exporter.clear()
    run_due()  # the sweeper's retry, in a later task
    retry = traced.one(SpanKind.CLIENT)
    assert retry.attributes["webhooks.attempt"] == 2
    assert retry.attributes["http.response.status_code"] == 200
    assert retry.status.status_code == StatusCode.UNSET
    assert [link.context.span_id for link in retry.links] == [publish.context.span_id]


def test_timeout_is_an_error_span_without_a_status_code(
    traced, commit, receiver, subscribe, settings
):
    settings.WEBHOOKS_TIMEOUT = 0.3
    subscribe(receiver, ["article.created"])
    receiver.answer(Answer(delay=1.0))
    save_in_host_request(traced, commit)
    attempt = traced.one(SpanKind.CLIENT)
    assert attempt.status.status_code == StatusCode.ERROR
    assert attempt.attributes["error.type"] == "timeout"
    assert "http.response.status_code" not in attempt.attributes
    assert attempt.end_time - attempt.start_time >= 0.3e9  # the span covers the request


def test_refused_connection_is_an_error_span(traced, commit, receiver, subscribe):
    subscribe(receiver, ["article.created"])
    receiver.stop()
    save_in_host_request(traced, commit)
    attempt = traced.one(SpanKind.CLIENT)
    assert attempt.status.status_code == StatusCode.ERROR
    assert attempt.attributes["error.type"] == "connection_refused"
    assert DeliveryAttempt.objects.get().error_kind == "connection_refused"


def test_no_secret_in_any_span(traced, commit, receiver, subscribe):
    receiver.url = f"{receiver.url}/T0001/B0002/path-token-4242?token=query-secret-77"
    sub = subscribe(
        receiver,
        ["article.created"],
        basic_auth_username="acme",
        basic_auth_password="s3cret-password",
        headers={"X-Api-Key": "header-secret-99"},
    )
    receiver.answer(Answer(500, "boom"))
    save_in_host_request(traced, commit)
    assert "path-token-4242" in receiver.requests[0].path  # sent, with its secrets
    secrets = [
        sub.secret,
        sub.secret.removeprefix("whsec_"),
        "s3cret-password",
        base64.b64encode(b"acme:s3cret-password").decode(),
        "header-secret-99",
        "path-token-4242",
        "query-secret-77",
    ]
    spans = traced.spans()
    assert {SpanKind.PRODUCER, SpanKind.CONSUMER, SpanKind.CLIENT} <= {s.kind for s in spans}
    exported = json.dumps(
        [
            {
                "name": s.name,
                "attributes": dict(s.attributes),
                "status": s.status.description,
                "events": [dict(e.attributes) for e in s.events],
            }
            for s in spans
        ],
        default=str,
    )
    for secret in secrets:
        assert secret not in exported


def header(request, name):
    return {k.lower(): v for k, v in request.headers.items()}.get(name)


def test_receivers_get_no_trace_context_by_default(traced, commit, receiver, subscribe):
    subscribe(receiver, ["article.created"])
    save_in_host_request(traced, commit)
    [request] = receiver.requests
    assert header(request, "traceparent") is None and header(request, "tracestate") is None


def test_opt_in_sends_the_attempt_spans_context(traced, commit, receiver, subscribe, settings):
    settings.WEBHOOKS_PROPAGATE_TRACE_CONTEXT = True
    subscribe(receiver, ["article.created"])
    save_in_host_request(traced, commit)
    attempt = traced.one(SpanKind.CLIENT)
    [request] = receiver.requests
    assert header(request, "traceparent") == traceparent(attempt)
    # The attempt log shows what was sent.
    assert DeliveryAttempt.objects.get().request_headers["traceparent"] == traceparent(attempt)


@pytest.fixture
def urllib3_instrumented(traced):
    """The host installed OpenTelemetry's urllib3 auto-instrumentation."""
    urllib3_instrumentation = pytest.importorskip("opentelemetry.instrumentation.urllib3")
    URLLib3Instrumentor = urllib3_instrumentation.URLLib3Instrumentor

    instrumentor = URLLib3Instrumentor()
    instrumentor.instrument(tracer_provider=traced.provider)
    yield
    instrumentor.uninstrument()


def test_hosts_urllib3_instrumentation_cannot_inject_trace_context(
    traced, urllib3_instrumented, commit, receiver, subscribe
):
    import urllib3

    # The instrumentation works: a request of the host's own carries its context.
    with traced.host.start_as_current_span("host call"):
        urllib3.PoolManager().request("POST", receiver.url, body=b"{}")
    assert header(receiver.requests.pop(), "traceparent")

    subscribe(receiver, ["article.created"])
    with commit():
        Article.objects.create(title="hello")  # in-line, in this thread
    with traced.host.start_as_current_span("host request"):
        webhooks.send_event("article.shared", {})  # not subscribed: no request
    [request] = receiver.requests
    assert header(request, "traceparent") is None
    assert header(request, "tracestate") is None


def test_opt_in_with_urllib3_instrumentation_sends_ours(
    traced, urllib3_instrumented, commit, receiver, subscribe, settings
):
    settings.WEBHOOKS_PROPAGATE_TRACE_CONTEXT = True
    subscribe(receiver, ["article.created"])
    save_in_host_request(traced, commit)
    [request] = receiver.requests
    assert header(request, "traceparent") == traceparent(traced.one(SpanKind.CLIENT))


class Exploding:
    """A span processor that raises when a span starts or ends, as a broken pipeline might."""

    def __init__(self, when: str) -> None:
        self.when = when

    def on_start(self, span, parent_context=None):
        if self.when == "start":
            raise RuntimeError("processor broken")

    def on_end(self, span):
        if self.when == "end":
            raise RuntimeError("processor broken")

    def shutdown(self):
        pass

    def force_flush(self, timeout_millis=30000):
        return True


class BrokenTracerProvider:
    """A provider whose tracer cannot start a span at all."""

    def get_tracer(self, *args, **kwargs):
        return self

    def start_span(self, *args, **kwargs):
        raise RuntimeError("tracer broken")


@pytest.mark.parametrize("broken", ["span start", "span end", "tracer"])
def test_broken_tracing_never_breaks_a_save_or_a_delivery(
    broken, commit, receiver, subscribe, caplog
):
    if broken == "tracer":
        tracing.set_tracer_provider(BrokenTracerProvider())
    else:
        tracing.set_tracer_provider(Traced(Exploding(broken.split()[1])).provider)
    tracing._warned.clear()
    subscribe(receiver, ["article.created"])
    try:
        with commit():
            with Traced().host.start_as_current_span("request"):
                Article.objects.create(title="hello")
                webhooks.send_event("article.shared", {})
    finally:
        tracing.set_tracer_provider(None)
    assert Event.objects.count() == 2
    assert Delivery.objects.get().status == Delivery.Status.SUCCEEDED
    assert len(receiver.requests) == 1
    assert "Tracing failed" in caplog.text


def test_an_unreadable_stored_trace_context_is_ignored(traced, receiver, subscribe):
    subscribe(receiver, ["article.shared"])
    event = outbox.record_event("article.shared", {})
    Event.objects.filter(pk=event.pk).update(trace_context="not-a-traceparent,=x")
    dispatch.process_events([event.pk])
    assert list(traced.one(SpanKind.CLIENT).links) == []
    assert Delivery.objects.get().status == Delivery.Status.SUCCEEDED


@pytest.mark.parametrize(
    "url, full",
    [
        (
            "https://user:pw@Hooks.Example.com/services/T/B/X?token=1",
            "https://hooks.example.com/REDACTED",
        ),
        ("https://example.com", "https://example.com"),
        ("https://example.com/?q=secret", "https://example.com/"),
        ("http://[::1]:8080/x", "http://[::1]:8080/REDACTED"),
    ],
)
def test_url_in_spans_has_no_credentials_query_or_path(url, full):
    shown = tracing.safe_url(url)
    assert shown["url.full"] == full
    assert "pw" not in json.dumps(shown) and "user" not in json.dumps(shown)


def test_without_the_api_every_hook_is_a_no_op(monkeypatch, commit, receiver, subscribe):
    monkeypatch.setattr(tracing, "trace", None)  # as if opentelemetry-api were not installed
    subscribe(receiver, ["article.created"])
    with commit():
        Article.objects.create(title="hello")
    assert Event.objects.get().trace_context is None
    assert Delivery.objects.get().status == Delivery.Status.SUCCEEDED


def test_the_app_imports_and_checks_without_opentelemetry():
    script = (
        "import sys; sys.modules['opentelemetry'] = None\n"  # any import of it fails
        "import django; django.setup()\n"
        "from django.core.management import call_command\n"
        "from webhooks import dispatch, outbox, tracing\n"
        "assert tracing.trace is None and tracing.tracer() is None\n"
        "call_command('check')\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "no issues" in done.stdout
