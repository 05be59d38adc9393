"""The sweeper: the clock that repairs lost enqueues, fires due retries, sends requested
resends, and reclaims deliveries whose worker died.

django-q2 schedules fire at most about once a minute (with ~30 s precision), while the
first retry is due after 5 s. So a scheduled sweep keeps polling (cheap indexed queries)
while work is due before the next scheduled sweep, but in slices of at most
``SLICE_SECONDS``: each slice is one short task that hands over to the next through the
queue. A worker is therefore never held when nothing is due, and a stopping cluster
(Ctrl-C, SIGTERM) waits for one slice at most. A database error in a poll is logged and
the next poll tries again: the sweeper is what repairs things, it must not die of them.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import close_old_connections, connection
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django_q.brokers.orm import ORM

from . import dispatch, heartbeat, metrics, outbox
from .conf import conf
from .models import Delivery, Event

logger = logging.getLogger("webhooks")

SCHEDULE_NAME = "webhooks: sweep"
MAX_PER_SWEEP = 5000
#: A poll enqueues due deliveries only while the broker's queue holds fewer than this many
#: tasks per worker. The rest stays due in the database, for the workers' senders to claim
#: as they have room and for the next poll: a backlog of failing webhooks' retries would
#: otherwise fill the queue (first come, first served) ahead of the host's new events,
#: whose tasks waited behind four per worker for 0.6 s at the median under load.
QUEUED_TASKS_PER_WORKER = 1
#: Longest a sweep task polls before handing over to the next one.
SLICE_SECONDS = 5.0


@dataclass
class SweepReport:
    events_fanned_out: int = 0
    deliveries_enqueued: int = 0
    resends_enqueued: int = 0
    errors: int = 0

    def __bool__(self) -> bool:
        return bool(self.events_fanned_out or self.deliveries_enqueued or self.resends_enqueued)

    def add(self, other: SweepReport) -> None:
        self.events_fanned_out += other.events_fanned_out
        self.deliveries_enqueued += other.deliveries_enqueued
        self.resends_enqueued += other.resends_enqueued
        self.errors += other.errors


def sweep_once(*, now=None) -> SweepReport:
    now = now or timezone.now()
    report = SweepReport()
    lost = outbox.unfanned_events(now=now)
    if lost:
        # One transaction and a constant number of queries, however many were lost. Healthy
        # webhooks' deliveries go to the workers at once, as the lost task would have sent
        # them; failing webhooks' wait due, behind their own backlog (claimed below).
        _, fresh = outbox.fan_out_and_lease(lost, lease_failing=False)
        report.events_fanned_out = len(lost)
        leased = [d for d in fresh if d.lease_token is not None]
        report.deliveries_enqueued += dispatch.hand_to_workers(leased)
    # The deliveries just fanned out are due from the fan-out's clock, which is later than
    # ``now``: claimed with the later time, they go in this poll, not the next one (a sweep
    # whose window has passed polls once: they would wait for the next scheduled sweep).
    due_at = max(now, timezone.now())
    room = _queue_room()
    while report.deliveries_enqueued < MAX_PER_SWEEP and room > 0:
        room -= 1
        token, ids = outbox.claim_due(conf.BATCH_SIZE, now=due_at)
        if not ids:
            break
        sent = outbox.enqueue("webhooks.tasks.deliver", [str(i) for i in ids], str(token))
        if not sent:
            # Broker down: give the claims back so the next poll (or sweep) tries again.
            Delivery.objects.filter(pk__in=ids, lease_token=token).update(
                lease_token=None, leased_until=None
            )
            break
        report.deliveries_enqueued += len(ids)
    report.resends_enqueued = outbox.enqueue_requested(
        max_batches=MAX_PER_SWEEP // max(1, conf.BATCH_SIZE), now=now
    )
    heartbeat.sweeper_beat()  # a sweep that ran to its end: the health's "last sweep"
    if report:
        logger.info(
            "Sweep: %d events fanned out, %d deliveries and %d resends enqueued.",
            report.events_fanned_out,
            report.deliveries_enqueued,
            report.resends_enqueued,
        )
    metrics.swept()
    return report


def _queue_room() -> int:
    """How many ``deliver`` tasks this poll may add to the broker's queue."""
    from django_q.conf import Conf

    unbounded = MAX_PER_SWEEP
    if Conf.SYNC:
        return unbounded  # no queue: each task runs as it is enqueued
    try:
        waiting = _tasks_queued(outbox._get_broker())
    except Exception:  # noqa: BLE001 - a broker that cannot tell: enqueue as before
        logger.warning("Could not read the broker's queue size.", exc_info=True)
        return unbounded
    return max(0, QUEUED_TASKS_PER_WORKER * max(1, Conf.WORKERS or 1) - waiting)


def _tasks_queued(broker) -> int:
    """Tasks waiting in the broker's queue (not the events the outbox broker hands out)."""
    from .broker import OutboxBroker

    if isinstance(broker, OutboxBroker):
        return ORM.queue_size(broker) or 0
    return broker.queue_size() or 0


def _fresh_connections() -> None:
    """Drop broken or expired connections between polls (a long-running task must, as a
    request does); never inside a transaction (a caller's, or a test's)."""
    if not connection.in_atomic_block:
        close_old_connections()


def _sweep_safely() -> SweepReport:
    """One poll that survives the database: an error is logged, and the next poll retries."""
    try:
        return sweep_once()
    except Exception:  # noqa: BLE001 - a sweeper that dies repairs nothing
        logger.exception("Sweep failed; trying again at the next poll.")
        _fresh_connections()
        return SweepReport(errors=1)


def work_ahead(until: datetime) -> bool:
    """Is anything due, being sent, requested or not fanned out, that a poll before
    ``until`` could have to act on? (Three indexed EXISTS queries.)"""
    # Due before ``until`` (webhook switched on), or in flight now: a failure will be due soon.
    pending = Delivery.objects.filter(status=Delivery.Status.PENDING).filter(
        Q(next_attempt_at__lt=until, subscription__is_active=True) | Q(leased_until__isnull=False)
    )
    # Each in the order of its partial index: then the index is the cheapest plan however
    # stale the table's statistics. After a backlog, PostgreSQL's last ANALYZE may have
    # seen every event waiting; a bare EXISTS then reads the table from its start, and
    # every poll reads all the events drained since (a million rows after a million-event
    # backlog), until autovacuum analyzes the table again.
    return (
        pending.exists()
        or _any(Delivery.objects.filter(resend_requested_at__isnull=False), "resend_requested_at")
        or _any(Event.objects.filter(fanned_out_at__isnull=True), "occurred_at")
    )


def _any(rows, order: str) -> bool:
    """``exists()`` that keeps its ORDER BY (Django drops it from an EXISTS)."""
    return bool(rows.order_by(order).values_list("pk", flat=True)[:1])


def run(duration: float | None = None) -> SweepReport:
    """Sweep every ``POLL_INTERVAL`` for ``duration`` seconds (the management command)."""
    duration = conf.SWEEP_DURATION if duration is None else duration
    deadline = time.monotonic() + duration
    total = SweepReport()
    while True:
        total.add(_sweep_safely())
        if time.monotonic() + conf.POLL_INTERVAL >= deadline:
            return total
        time.sleep(conf.POLL_INTERVAL)
        _fresh_connections()


def run_slice(until: datetime) -> SweepReport:
    """Poll until ``until`` while there is work ahead, for one slice at most; then hand
    over to the next slice through the queue, or stop when nothing is ahead."""
    slice_end = time.monotonic() + SLICE_SECONDS
    total = SweepReport()
    while True:
        total.add(_sweep_safely())
        try:
            ahead = timezone.now() < until and work_ahead(until)
        except Exception:  # noqa: BLE001 - when in doubt, keep sweeping
            logger.exception("Could not check for work ahead.")
            _fresh_connections()
            ahead = timezone.now() < until
        if not ahead:
            return total
        if time.monotonic() + conf.POLL_INTERVAL >= slice_end:
            # The next slice is a new task: a stopping cluster does not wait for it.
            outbox.enqueue("webhooks.tasks.sweep_until", until.isoformat())
            return total
        time.sleep(conf.POLL_INTERVAL)
        _fresh_connections()


def run_scheduled() -> SweepReport:
    """The scheduled sweep: slices of polling until the next scheduled sweep is due, at most
    ``WEBHOOKS_SWEEP_DURATION`` seconds, so two sweeps do not poll side by side."""
    from django_q.models import Schedule

    now = timezone.now()
    until = now + timedelta(seconds=conf.SWEEP_DURATION)
    try:
        next_run = Schedule.objects.filter(name=SCHEDULE_NAME).values_list("next_run", flat=True)
        if next_run and next_run[0] is not None:
            until = min(until, next_run[0] - timedelta(seconds=conf.POLL_INTERVAL))
    except Exception:  # noqa: BLE001 - sweep once at least
        logger.exception("Could not read the sweep schedule.")
        _fresh_connections()
    return run_slice(until)


def continue_sweep(until: str) -> SweepReport:
    parsed = parse_datetime(until)
    if parsed is None or parsed <= timezone.now():
        return SweepReport()  # a slice that waited in the queue past its window
    return run_slice(parsed)


def ensure_schedule(**kwargs) -> None:
    """Create (or repair) the periodic sweep in django-q2's scheduler; safe to call often."""
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name=SCHEDULE_NAME,
        defaults={
            "func": "webhooks.tasks.sweep",
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "repeats": -1,
        },
    )
