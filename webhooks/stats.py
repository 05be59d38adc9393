"""The operators' figures, defined once: the metrics, ``webhooks_health``, the admin and the
API all read them from here, so a number means the same thing wherever it is shown.

Definitions:

- **due backlog**: deliveries of active webhooks still pending whose next attempt time has
  come (whether or not a worker holds them right now). It grows when workers cannot keep
  up or are down.
- **oldest due**: the earliest ``next_attempt_at`` among them; its age is how late the
  platform is on its promises (the alerting figure: a backlog that is old, not large).
- **retries waiting**: pending deliveries of active webhooks whose next attempt is in the
  future.
- **held**: pending deliveries of disabled webhooks. Nobody sends them until the webhook is
  enabled again, so they are not late: counting them as due would page the operator each
  time a customer's receiver answers 410.
- **events waiting for fan-out**: events committed but not yet turned into deliveries.
- **webhooks disabled**: webhooks switched off, by a receiver's 410, by failing too long,
  or by a person.

One webhook's figures (success rate, latency, its backlog, last success) are defined
below, at ``endpoint``; the processes' (last sweep, workers seen) at ``processes``.

Every platform-wide query here reads an index (``webhooks_delivery_due``, the partial
``webhooks_event_pending_fanout``, the subscription table), whatever the size of the
attempts table.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from django.db.models import (
    BooleanField,
    CharField,
    Count,
    DateTimeField,
    IntegerField,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)
from django.utils import timezone

from . import health_hours
from .models import Delivery, DeliveryAttempt, Event, Heartbeat, Subscription


@dataclass(frozen=True)
class Backlog:
    at: datetime
    due: int
    oldest_due_at: datetime | None
    retries_waiting: int
    events_waiting: int
    oldest_event_waiting_at: datetime | None
    webhooks_disabled: int
    held: int = 0

    @property
    def oldest_due_age(self) -> float:
        """Seconds since the oldest due delivery became due (0 when nothing is due)."""
        return _age(self.at, self.oldest_due_at)

    @property
    def oldest_event_waiting_age(self) -> float:
        return _age(self.at, self.oldest_event_waiting_at)

    def as_dict(self) -> dict:
        figures = asdict(self)
        figures["oldest_due_age_seconds"] = round(self.oldest_due_age, 3)
        figures["oldest_event_waiting_age_seconds"] = round(self.oldest_event_waiting_age, 3)
        return figures


def _age(now: datetime, since: datetime | None) -> float:
    return max(0.0, (now - since).total_seconds()) if since else 0.0


def _owed():
    """Pending deliveries of active webhooks: what the workers owe."""
    return Delivery.objects.filter(status=Delivery.Status.PENDING, subscription__is_active=True)


def backlog(now: datetime | None = None) -> Backlog:
    """The platform-wide backlog figures, in three queries."""
    now = now or timezone.now()
    active, due = Q(subscription__is_active=True), Q(next_attempt_at__lte=now)
    deliveries = Delivery.objects.filter(status=Delivery.Status.PENDING).aggregate(
        due=Count("pk", filter=active & due),
        oldest=Min("next_attempt_at", filter=active & due),
        waiting=Count("pk", filter=active & Q(next_attempt_at__gt=now)),
        held=Count("pk", filter=~active),
    )
    events = Event.objects.filter(fanned_out_at__isnull=True).aggregate(
        waiting=Count("pk"), oldest=Min("occurred_at")
    )
    return Backlog(
        at=now,
        due=deliveries["due"],
        oldest_due_at=deliveries["oldest"],
        retries_waiting=deliveries["waiting"],
        events_waiting=events["waiting"],
        oldest_event_waiting_at=events["oldest"],
        webhooks_disabled=Subscription.objects.filter(is_active=False).count(),
        held=deliveries["held"],
    )


def worst_webhooks(limit: int, now: datetime) -> dict[str, tuple[int, float]]:
    """{webhook id: (due deliveries, seconds since its oldest became due)} of the ``limit``
    active webhooks with the most due deliveries and the ``limit`` with the oldest (so at
    most ``2 × limit`` entries: a bounded set of labels for metrics)."""
    if limit <= 0:
        return {}
    per_webhook = (
        _owed()
        .filter(next_attempt_at__lte=now)
        .values("subscription_id")
        .annotate(due=Count("pk"), oldest=Min("next_attempt_at"))
    )
    worst = {}
    for ordering in (("-due", "subscription_id"), ("oldest", "subscription_id")):
        for row in per_webhook.order_by(*ordering)[:limit]:
            worst[str(row["subscription_id"])] = (row["due"], _age(now, row["oldest"]))
    return worst


# -- processes --------------------------------------------------------------------------


@dataclass(frozen=True)
class Processes:
    at: datetime
    last_sweep_at: datetime | None
    workers_seen: int  # worker processes that beat within ``worker_window`` seconds
    worker_window: float

    @property
    def last_sweep_age(self) -> float | None:
        """Seconds since the last sweep ran to its end (None: never seen)."""
        return _age(self.at, self.last_sweep_at) if self.last_sweep_at else None


def processes(worker_window: float = 180.0, now: datetime | None = None) -> Processes:
    """The last sweep and the workers seen recently, from their heartbeats (two queries)."""
    from .heartbeat import SWEEPER

    now = now or timezone.now()
    beats = Heartbeat.objects.all()
    sweep = beats.filter(key=SWEEPER).values_list("seen_at", flat=True).first()
    since = now - timedelta(seconds=worker_window)
    workers = beats.filter(key__startswith="worker:", seen_at__gte=since).count()
    return Processes(at=now, last_sweep_at=sweep, workers_seen=workers, worker_window=worker_window)


# -- one webhook ------------------------------------------------------------------------
#
# **Success rate** (over a window: 24 hours, 7 days): the share of the delivery attempts
# made to the webhook in the window that succeeded (2xx in time), automatic and manual
# alike; None (shown "—", null in the API) when no attempt was made. Attempts, not
# finished deliveries: a receiver that fails now shows it now, while its deliveries are
# still being retried, and a delivery that succeeds on its third try counts 2 failures
# and 1 success — what the receiver did.
#
# **Windows** start on the hour (``window_start``): "24 hours" counts from the start of
# the hour (UTC) 24 hours ago, so it covers 24 to 25 hours; "7 days" likewise. Dashboards
# of webhook services bucket by hour, and so the figures are the webhook's hourly rows
# (``health_hours``) alone: no scan of a partial hour's attempts, however large the
# tables. ``last_success_at`` is the newest successful attempt since the 7 days' start.
#
# **Latency** p50 / p95: of the durations of the last ``LATENCY_SAMPLE`` attempts of the
# last 24 hours (nearest-rank percentiles, computed in Python: the same on every
# database), so its cost does not grow with the traffic.

DAY = timedelta(hours=24)
WEEK = timedelta(days=7)
LATENCY_SAMPLE = 1000


def window_start(now: datetime, length: timedelta) -> datetime:
    """Where the window of ``length`` up to ``now`` starts: the start of the hour ``length``
    ago (11:00 yesterday for "24 hours" at 11:40)."""
    return health_hours.hour_of(now - length)


def attempts_since(since: datetime, subscription) -> QuerySet:
    """The attempts made to ``subscription`` (an id, a webhook, or ``OuterRef("pk")``)
    since ``since``: read through ``webhooks_delivery_attempted`` (an attempt is never
    later than its delivery's ``last_attempt_at``), whatever the size of the tables."""
    return _attempts_in_window(since, delivery__subscription=subscription)


def _attempts_in_window(since: datetime, **webhooks) -> QuerySet:
    return DeliveryAttempt.objects.filter(
        **webhooks, delivery__last_attempt_at__gte=since, created_at__gte=since
    )


def rate(succeeded: int, attempts: int) -> float | None:
    """The success rate (a share, 0–1) of ``attempts``; None when there were none."""
    return succeeded / attempts if attempts else None


def percent_text(share: float | None) -> str:
    """How pages show a rate: "—" for none, else a percentage rounded DOWN to 0.1, so that
    99.96 % of attempts is not shown as 100 %."""
    if share is None:
        return "—"
    tenths = math.floor(share * 1000 + 1e-9) / 10
    return f"{tenths:.1f}".removesuffix(".0") + "%"


def day_rates(webhooks, now: datetime | None = None) -> dict:
    """{webhook id: (attempts, succeeded)} of the 24-hour window for a page of ``webhooks``
    (ids; those without attempts are left out), in one grouped query however many
    webhooks the page shows: the same definition as ``endpoint`` gives for one webhook,
    summed as it is from the hourly rows (``health_hours``), not from each webhook's day
    of attempts."""
    return health_hours.since_for(webhooks, window_start(now or timezone.now(), DAY))


@dataclass(frozen=True)
class EndpointStats:
    """One webhook's figures at ``at``."""

    at: datetime
    since_24h: datetime  # where the 24-hour window starts (``window_start``)
    since_7d: datetime
    attempts_24h: int
    succeeded_24h: int
    attempts_7d: int
    succeeded_7d: int
    latency_p50_ms: int | None
    latency_p95_ms: int | None
    latency_sample: int  # how many attempt durations the percentiles are of
    due: int  # pending deliveries whose next attempt time has come
    pending: int  # every delivery still owed (due, waiting for a retry, being sent)
    last_success_at: datetime | None  # the last successful attempt since ``since_7d``
    last_attempt_at: datetime | None
    last_attempt_succeeded: bool | None
    last_attempt_status_code: int | None
    last_attempt_error_kind: str

    @property
    def success_rate_24h(self) -> float | None:
        return rate(self.succeeded_24h, self.attempts_24h)

    @property
    def last_attempt(self) -> LastAttempt | None:
        if self.last_attempt_at is None:
            return None
        return LastAttempt(
            at=self.last_attempt_at,
            succeeded=bool(self.last_attempt_succeeded),
            status_code=self.last_attempt_status_code,
            error_kind=self.last_attempt_error_kind,
        )

    @property
    def success_rate_7d(self) -> float | None:
        return rate(self.succeeded_7d, self.attempts_7d)

    def as_dict(self) -> dict:
        figures = asdict(self)
        figures["success_rate_24h"] = self.success_rate_24h
        figures["success_rate_7d"] = self.success_rate_7d
        return figures


def endpoint(subscription, now: datetime | None = None) -> EndpointStats:
    """One webhook's figures, in six indexed queries; the counts are summed from its
    hourly rows alone (``health_hours``: at most 169), the last success read from the
    attempts of one hour, the latency's cost grows with ``LATENCY_SAMPLE`` only."""
    now = now or timezone.now()
    pk = getattr(subscription, "pk", subscription)
    day_from, week_from = window_start(now, DAY), window_start(now, WEEK)
    counts = health_hours.windows(pk, {"day": day_from, "week": week_from})
    # Counted by ``subscription`` (never null), not by the primary key: the partial index
    # ``webhooks_delivery_pending`` holds it, so the backlog is counted from the index alone.
    owed = Delivery.objects.filter(subscription=pk, status=Delivery.Status.PENDING).aggregate(
        pending=Count("subscription"),
        due=Count("subscription", filter=Q(next_attempt_at__lte=now)),
    )
    durations = _latest_durations(pk, now - DAY)
    last = _last_attempt(pk)
    return EndpointStats(
        at=now,
        since_24h=day_from,
        since_7d=week_from,
        attempts_24h=counts["day"][0],
        succeeded_24h=counts["day"][1],
        attempts_7d=counts["week"][0],
        succeeded_7d=counts["week"][1],
        latency_p50_ms=percentile(durations, 50),
        latency_p95_ms=percentile(durations, 95),
        latency_sample=len(durations),
        due=owed["due"],
        pending=owed["pending"],
        last_success_at=counts["last_success"],
        last_attempt_at=last.created_at if last else None,
        last_attempt_succeeded=last.succeeded if last else None,
        last_attempt_status_code=last.response_status_code if last else None,
        last_attempt_error_kind=last.error_kind if last else "",
    )


def _latest_durations(pk, since: datetime) -> list[int]:
    """Durations of the last ``LATENCY_SAMPLE`` attempts since ``since``, reading at most
    about ``LATENCY_SAMPLE`` deliveries' attempts: those of the deliveries attempted from
    the time the last ``LATENCY_SAMPLE`` of them were (one index range). That time is
    fetched first, on its own: as a subquery, PostgreSQL planned for the whole day of a
    busy webhook's deliveries (36,000 at 10M attempts) and started parallel workers for it
    (190–640 ms on a loaded machine, against 10–75 ms knowing it)."""
    cutoff = list(
        Delivery.objects.filter(subscription=pk, last_attempt_at__gte=since)
        .order_by("-last_attempt_at")
        .values_list("last_attempt_at", flat=True)[LATENCY_SAMPLE - 1 : LATENCY_SAMPLE]
    )
    start = cutoff[0] if cutoff else since
    return list(
        attempts_since(since, pk)
        .filter(delivery__last_attempt_at__gte=start)
        .order_by("-created_at")
        .values_list("duration_ms", flat=True)[:LATENCY_SAMPLE]
    )


def _last_attempts(subscription) -> QuerySet:
    """The attempts of the delivery attempted last (index ``webhooks_delivery_attempted``),
    highest number first: the first is the webhook's newest attempt. ``subscription`` is an
    id, or an ``OuterRef`` when this is a subquery of a list."""
    last_delivery = (
        Delivery.objects.filter(subscription=subscription, last_attempt_at__isnull=False)
        .order_by("-last_attempt_at", "-pk")
        .values("pk")[:1]
    )
    return DeliveryAttempt.objects.filter(delivery=Subquery(last_delivery)).order_by("-number")


def _last_attempt(pk) -> DeliveryAttempt | None:
    return _last_attempts(pk).first()


def percentile(values: list[int], p: float) -> int | None:
    """The nearest-rank ``p``-th percentile of ``values`` (None when there are none)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


# -- a webhook's state ------------------------------------------------------------------
#
# **State**, from the webhook's stored fields and its last attempt (the newest attempt of
# the delivery attempted last, as ``endpoint`` reads it):
#
# - **disabled**: switched off (by a person, a 410 answer or failing too long), with the
#   reason stored in ``disabled_reason``;
# - **failing**: on, and either in a failure streak (``consecutive_failures``) or its last
#   attempt failed. The second covers what the streak leaves out: a failed test event or
#   manual resend, and a webhook switched back on whose receiver has not answered well
#   since. A webhook is never "working" beside a last delivery that failed;
# - **working**: on, and its last attempt succeeded;
# - **active**: on, and never tried yet (nothing says whether it works).
#
# The admin's list, its "state" filter, the admin's page and the portal all read this.

STATE_LABELS = {
    "working": "Working",
    "failing": "Failing",
    "disabled": "Disabled",
    "active": "No deliveries yet",
}


@dataclass(frozen=True)
class LastAttempt:
    at: datetime
    succeeded: bool
    status_code: int | None
    error_kind: str

    @property
    def outcome(self) -> str:
        """ "HTTP 200", "HTTP 410", "Connection refused": what the receiver did, in words."""
        if self.status_code:
            return f"HTTP {self.status_code}"
        kinds = dict(DeliveryAttempt.ErrorKind.choices)
        return str(kinds.get(self.error_kind or "", "") or "No answer")


@dataclass(frozen=True)
class WebhookState:
    key: str  # "working" | "failing" | "disabled" | "active"
    label: str  # the word shown: "Working", "Failing", …
    detail: str  # one sentence: why (the reason it was disabled, the failure streak …)
    last_attempt: LastAttempt | None


def webhook_state(subscription, last: LastAttempt | None) -> WebhookState:
    """The one definition of a webhook's state (see above). ``last`` is its last attempt:
    ``endpoint(...).last_attempt`` on one webhook's page, ``last_attempt_of(row)`` in a
    list annotated by ``with_last_attempt``."""
    if not subscription.is_active:
        key = "disabled"
        detail = str(subscription.disabled_reason or "") or "Switched off."
    elif subscription.consecutive_failures:
        key = "failing"
        count = subscription.consecutive_failures
        detail = f"{count} failed attempt{'s' if count != 1 else ''} in a row"
        if subscription.failing_since:
            since = timezone.localtime(subscription.failing_since)
            detail += f", since {since:%Y-%m-%d %H:%M}"
        detail += "."
    elif last is not None and not last.succeeded:
        key = "failing"
        when = timezone.localtime(last.at)
        detail = f"The last attempt failed: {last.outcome} at {when:%Y-%m-%d %H:%M}."
    elif last is not None:
        key, detail = "working", "The last attempt succeeded."
    else:
        key, detail = "active", "It is sent the next event it subscribes to."
    return WebhookState(key=key, label=STATE_LABELS[key], detail=detail, last_attempt=last)


def with_last_attempt(queryset):
    """Webhooks annotated with their last attempt (``last_attempt_at``, ``_succeeded``,
    ``_status_code``, ``_error_kind``), as ``endpoint`` finds it: in the list's one query,
    each an index look-up per row."""
    last = _last_attempts(OuterRef(OuterRef("pk")))

    def field(name, output):
        return Subquery(last.values(name)[:1], output_field=output)

    return queryset.annotate(
        last_attempt_at=field("created_at", DateTimeField()),
        last_attempt_succeeded=field("succeeded", BooleanField()),
        last_attempt_status_code=field("response_status_code", IntegerField()),
        last_attempt_error_kind=field("error_kind", CharField()),
    )


def last_attempt_of(webhook) -> LastAttempt | None:
    """The last attempt of a webhook of a list annotated by ``with_last_attempt``."""
    at = getattr(webhook, "last_attempt_at", None)
    if at is None:
        return None
    code = webhook.last_attempt_status_code
    return LastAttempt(
        at=at,
        succeeded=bool(webhook.last_attempt_succeeded),
        status_code=code if isinstance(code, int) else None,
        error_kind=webhook.last_attempt_error_kind or "",
    )


def filter_state(queryset, key: str):
    """The webhooks (annotated by ``with_last_attempt``) in state ``key``; all for another."""
    active = Q(is_active=True)
    failed_last = Q(last_attempt_succeeded=False)
    streak = Q(consecutive_failures__gt=0)
    conditions = {
        "disabled": Q(is_active=False),
        "failing": active & (streak | failed_last),
        "working": active & ~streak & Q(last_attempt_succeeded=True),
        "active": active & ~streak & Q(last_attempt_at__isnull=True),
    }
    return queryset.filter(conditions[key]) if key in conditions else queryset
