"""Prometheus metrics (``pip install 'django-webhooks-outbox[metrics]'``).

Two kinds of figures:

- **counted where they happen** (attempts, deliveries finished, retries, disablings,
  sweeps, durations): the worker records them in memory, a few label lookups per outcome
  and no query. With ``PROMETHEUS_MULTIPROC_DIR`` set, prometheus_client's multiprocess
  mode writes them to files in that directory, so the web process's scrape adds up every
  qcluster worker on the host;
- **read from the database when scraped** (the backlog: ``webhooks.stats.backlog()``, and
  the worst webhooks by due backlog): computed by the scraping process only, so they are
  never multiplied by the number of processes (``collector.py``).

Without prometheus_client every recording call here is a no-op and the metrics URL says
what to install. Recording never raises into a worker: a failure is logged and dropped.
"""

from __future__ import annotations

import logging

from ..conf import conf
from ..models import DeliveryAttempt

logger = logging.getLogger("webhooks")

try:
    import prometheus_client
except ImportError:  # the optional extra is not installed
    prometheus_client = None

INSTALL_HINT = (
    "Prometheus metrics need prometheus-client: pip install 'django-webhooks-outbox[metrics]'."
)

#: Label value for an event type the registry does not declare (bounds the label's values).
OTHER = "other"

#: ``outcome`` of ``webhooks_attempts_total``: "ok", or why the attempt failed.
ATTEMPT_OUTCOMES = frozenset(
    ["ok"] + [kind for kind in DeliveryAttempt.ErrorKind.values if kind] + [OTHER]
)

#: Outcomes of attempts that sent no request (no duration to observe).
NOT_SENT = frozenset(
    [
        DeliveryAttempt.ErrorKind.UNDECRYPTABLE,
        DeliveryAttempt.ErrorKind.INVALID_SETTINGS,
        DeliveryAttempt.ErrorKind.BLOCKED_TARGET,
    ]
)

#: ``outcome`` of ``webhooks_deliveries_total``.
SUCCEEDED, FAILED, GIVEN_UP = "succeeded", "failed", "given_up"

#: ``reason`` of ``webhooks_disabled_total``.
GONE, FAILING = "gone", "failing"

# Seconds: from a fast local receiver (ms) to the longest timeout anyone should set.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
# Seconds from the event to its first attempt: sub-second when workers keep up, minutes
# when they do not.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)


def available() -> bool:
    return prometheus_client is not None


class _Metrics:
    """The counted metrics, registered in prometheus_client's default registry (so
    django-prometheus and ``start_http_server`` export them too)."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Histogram

        self.deliveries = Counter(
            "webhooks_deliveries",
            "Deliveries that ended: succeeded, given_up (retries exhausted) or failed "
            "(ended without retrying: 410 Gone, a failed one-shot test event).",
            ["outcome", "event_type"],
        )
        self.attempts = Counter(
            "webhooks_attempts",
            'HTTP attempts by outcome ("ok", an HTTP status class such as http_5xx, or '
            "an error kind such as timeout) and event type.",
            ["outcome", "event_type"],
        )
        self.attempt_duration = Histogram(
            "webhooks_attempt_duration_seconds",
            "Duration of an HTTP attempt, connection to last byte of the answer.",
            buckets=DURATION_BUCKETS,
        )
        self.first_attempt_latency = Histogram(
            "webhooks_first_attempt_latency_seconds",
            "Seconds from the event (written in the host's transaction) to the start of "
            "its first attempt to a webhook.",
            buckets=LATENCY_BUCKETS,
        )
        self.retries = Counter(
            "webhooks_retries_scheduled", "Failed automatic attempts given a retry later."
        )
        self.disabled = Counter(
            "webhooks_disabled",
            "Webhooks switched off automatically: gone (the receiver answered 410) or "
            "failing (every delivery failed for WEBHOOKS_DISABLE_AFTER).",
            ["reason"],
        )
        self.sweeps = Counter("webhooks_sweeps", "Sweeper polls that ran to the end.")
        # Children by label values: .labels() takes a lock and builds a key each time.
        self._children: dict = {}

    def child(self, metric, *values):
        key = (id(metric), values)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*values)
        return found

    def all(self) -> list:
        return [
            self.deliveries,
            self.attempts,
            self.attempt_duration,
            self.first_attempt_latency,
            self.retries,
            self.disabled,
            self.sweeps,
        ]


_metrics = _Metrics() if prometheus_client is not None else None
if prometheus_client is not None:
    from .collector import BacklogCollector

    # The backlog gauges in the default registry too: django-prometheus's /metrics (one
    # process) and ``start_http_server`` export them alongside the counters.
    prometheus_client.REGISTRY.register(BacklogCollector())


def counted_metrics() -> list:
    """The counted metrics' collectors (empty without prometheus_client)."""
    return _metrics.all() if _metrics is not None else []


def metrics() -> _Metrics | None:
    """The counted metrics, or None without prometheus_client or with ``WEBHOOKS_METRICS`` off."""
    return _metrics if _metrics is not None and conf.METRICS else None


def event_type_label(name: str) -> str:
    """The event type as a label value: a declared type, or "other" (bounded cardinality)."""
    from ..registry import registry

    return name if name in registry.event_types else OTHER


def attempt_outcome(outcome) -> str:
    if outcome.succeeded:
        return "ok"
    kind = outcome.error_kind or OTHER
    return kind if kind in ATTEMPT_OUTCOMES else OTHER


def outcomes_recorded(items, rows, trigger, disabled, gone) -> None:
    """Count a recorded group of attempts (``dispatch._record_group``, after its commit).

    ``items``: (delivery as loaded before the request, request, outcome, when it ended);
    ``rows``: {pk: the delivery row as recorded}; ``disabled``: {webhook id: reason} of
    webhooks switched off here; ``gone``: the webhook ids that answered 410.
    """
    m = metrics()
    if m is None:
        return
    try:
        _count(m, items, rows, trigger, disabled, gone)
    except Exception:  # noqa: BLE001 - metrics must never break a worker
        logger.warning("Could not record webhook metrics.", exc_info=True)


def _count(m: _Metrics, items, rows, trigger, disabled, gone) -> None:
    from ..models import Delivery

    automatic = trigger == DeliveryAttempt.Trigger.AUTOMATIC
    cached = Delivery._meta.get_field("event").is_cached
    for delivery, _request, outcome, at in items:
        row = rows.get(delivery.pk)
        if row is None:  # deleted meanwhile: nothing was recorded
            continue
        event = delivery.event if cached(delivery) else None  # never a query here
        event_type = event_type_label(event.type) if event is not None else OTHER
        m.child(m.attempts, attempt_outcome(outcome), event_type).inc()
        seconds = outcome.duration_ms / 1000
        if outcome.error_kind not in NOT_SENT:
            m.attempt_duration.observe(seconds)
        if automatic and row.attempt_count == 1 and event is not None:
            started = at.timestamp() - seconds
            m.first_attempt_latency.observe(max(0.0, started - event.occurred_at.timestamp()))
        if row.status == delivery.status:
            if automatic and not outcome.succeeded and row.status == Delivery.Status.PENDING:
                m.retries.inc()
            continue
        if row.status == Delivery.Status.SUCCEEDED:
            m.child(m.deliveries, SUCCEEDED, event_type).inc()
        elif row.status == Delivery.Status.FAILED:
            given_up = automatic and outcome.status_code != 410 and not outcome.aborted
            m.child(m.deliveries, GIVEN_UP if given_up else FAILED, event_type).inc()
    for pk in disabled:
        m.child(m.disabled, GONE if pk in gone else FAILING).inc()


def swept() -> None:
    """One sweeper poll ran to the end (``sweeper.sweep_once``): the "sweeper silent" alert."""
    m = metrics()
    if m is not None:
        try:
            m.sweeps.inc()
        except Exception:  # noqa: BLE001 - metrics must never break the sweeper
            logger.warning("Could not record webhook metrics.", exc_info=True)
