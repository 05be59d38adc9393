"""Retention: delete deliveries, attempts and events older than the ``WEBHOOKS_KEEP_*`` settings.

Deliveries go first (with their attempts), then events none of whose deliveries is left.
Nothing still owed is deleted: not a pending (or due) delivery, nor one with a resend
requested, nor one a worker holds. Work is done in small batches, each one short
transaction that locks only its own rows (by primary key, skipping rows a worker holds),
so the purge can run beside live traffic; ``docs/benchmarks.md`` has the figures for one
million attempts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from . import health_hours, removal
from .conf import conf
from .models import Delivery, DeliveryAttempt, Event, PortalLinkUse

logger = logging.getLogger("webhooks")

SCHEDULE_NAME = "webhooks: purge"


@dataclass
class PurgeReport:
    deliveries: int = 0
    attempts: int = 0
    events: int = 0
    portal_links: int = 0  # used magic links past their expiry (their nonces)
    batches: int = 0
    last_transaction_s: float = 0.0
    longest_transaction_s: float = 0.0
    finished: bool = True  # False: stopped by the time limit, the rest is left for next time

    def __str__(self) -> str:
        return f"{self.deliveries} deliveries, {self.attempts} attempts and {self.events} events"


def _before(now: datetime, days) -> datetime | None:
    return None if days is None else now - timedelta(days=days)


def purgeable_deliveries(now: datetime) -> Q | None:
    """Finished deliveries past their retention that nobody still waits for; None when
    every kind is kept forever."""
    conditions = []
    succeeded_before = _before(now, conf.KEEP_SUCCEEDED_DAYS)
    if succeeded_before is not None:
        conditions.append(Q(status=Delivery.Status.SUCCEEDED, created_at__lt=succeeded_before))
    failed_before = _before(now, conf.KEEP_FAILED_DAYS)
    if failed_before is not None:
        conditions.append(Q(status=Delivery.Status.FAILED, created_at__lt=failed_before))
    if not conditions:
        return None
    q = conditions[0]
    for condition in conditions[1:]:
        q |= condition
    # Pending (and so due) deliveries are excluded by their status. A finished one can be
    # asked for again (a resend, a recovery): it is owed until its manual attempt is
    # recorded, and while a worker holds its lease that worker may be sending it.
    return q & Q(resend_requested_at__isnull=True) & ~Q(leased_until__gte=now)


def purgeable_events(now: datetime, *, surviving_deliveries: Q | None = None):
    """Events past their retention, fanned out, and with no delivery left.

    ``surviving_deliveries`` (for a dry run) counts only the deliveries that would remain.
    """
    events_before = _before(now, conf.KEEP_EVENTS_DAYS)
    if events_before is None:
        return Event.objects.none()
    deliveries = Delivery.objects.filter(event=OuterRef("pk"))
    if surviving_deliveries is not None:
        deliveries = deliveries.filter(surviving_deliveries)
    return Event.objects.filter(occurred_at__lt=events_before, fanned_out_at__isnull=False).filter(
        ~Exists(deliveries)
    )


def count(*, now: datetime | None = None) -> PurgeReport:
    """What ``purge`` would delete now (a dry run): counts only, nothing is locked."""
    now = now or timezone.now()
    report = PurgeReport()
    deliveries_q = purgeable_deliveries(now)
    if deliveries_q is not None:
        old = Delivery.objects.filter(deliveries_q)
        report.deliveries = old.count()
        report.attempts = DeliveryAttempt.objects.filter(delivery__in=old.values("pk")).count()
    surviving = ~deliveries_q if deliveries_q is not None else None
    report.events = purgeable_events(now, surviving_deliveries=surviving).count()
    return report


def purge(
    *,
    now: datetime | None = None,
    batch_size: int | None = None,
    time_limit: float | None = None,
    progress: Callable[[PurgeReport], None] | None = None,
) -> PurgeReport:
    """Delete what is past its retention, ``batch_size`` rows per transaction.

    Stops early (``report.finished`` False) once ``time_limit`` seconds have passed.
    ``progress`` is called with the running totals after each batch.
    """
    now = now or timezone.now()
    batch_size = batch_size or conf.PURGE_BATCH_SIZE
    deadline = None if time_limit is None else time.monotonic() + time_limit
    report = PurgeReport()

    def out_of_time() -> bool:
        if deadline is not None and time.monotonic() >= deadline:
            report.finished = False
        return not report.finished

    # First what is left of deleted webhooks' logs (``webhooks.removal``): normally
    # nothing, a task deleted them at once; this is for a task that was lost.
    cleared = removal.finish_deleted(deadline=deadline, now=now)
    report.deliveries += cleared.deliveries
    report.attempts += cleared.attempts
    report.finished = cleared.finished

    deliveries_q = purgeable_deliveries(now)
    if deliveries_q is not None:
        # Oldest first, along the created_at index, each batch from where the last one
        # stopped: the index keeps the entries of the rows deleted until a vacuum, and a
        # batch that started from the oldest again would walk them all (at 10M attempts,
        # 7,900 pages after a minute of purging, for 500 rows).
        candidates = Delivery.objects.filter(deliveries_q).order_by("created_at")
        reached = None
        while not out_of_time():
            batch = candidates if reached is None else candidates.filter(created_at__gte=reached)
            ids = list(batch.values_list("pk", flat=True)[:batch_size])
            if not ids:
                break
            started = time.monotonic()
            with transaction.atomic():
                # Re-checked under the lock, and the lock holds until the delete: a delivery
                # resent or claimed since it was picked is kept.
                locked_at = dict(
                    Delivery.objects.select_for_update(skip_locked=True)
                    .filter(deliveries_q, pk__in=ids)
                    .values_list("pk", "created_at")
                )
                locked = list(locked_at)
                if locked:
                    # The next batch starts at the newest of these (ties there are read
                    # again); one a worker holds, older than it, waits for the next run.
                    reached = max(locked_at.values())
                    # The condition again on the deletes: on a database without row locks
                    # it is what keeps a delivery resent since the SELECT above.
                    doomed = Delivery.objects.filter(deliveries_q, pk__in=locked)
                    doomed_attempts = DeliveryAttempt.objects.filter(
                        delivery_id__in=doomed.values("pk")
                    )
                    health_hours.forget(doomed_attempts, now)
                    attempts, _ = doomed_attempts.delete()
                    _, deleted = doomed.delete()
                    report.attempts += attempts
                    report.deliveries += deleted.get(Delivery._meta.label, 0)
            _batch_done(report, started, progress)
            if not locked:
                break  # every candidate is held by a worker right now: next time

    events = purgeable_events(now).order_by("occurred_at")
    while not out_of_time():
        ids = list(events.values_list("pk", flat=True)[:batch_size])
        if not ids:
            break
        started = time.monotonic()
        with transaction.atomic():
            deleted, by_model = purgeable_events(now).filter(pk__in=ids).delete()
            report.events += by_model.get(Event._meta.label, 0)
        _batch_done(report, started, progress)
        if not deleted:
            break
    if not out_of_time():  # hours no success rate reads any more: one small delete
        health_hours.purge_old(now)
    # The nonces of used magic links, once the links would be refused as expired anyway:
    # a handful of tiny rows, in batches like the rest.
    expired_links = PortalLinkUse.objects.filter(expires_at__lt=now).order_by("expires_at")
    while not out_of_time():
        ids = list(expired_links.values_list("pk", flat=True)[:batch_size])
        if not ids:
            break
        started = time.monotonic()
        deleted, _ = PortalLinkUse.objects.filter(pk__in=ids).delete()
        report.portal_links += deleted
        _batch_done(report, started, progress)
    return report


def _batch_done(report: PurgeReport, started: float, progress) -> None:
    report.batches += 1
    report.last_transaction_s = time.monotonic() - started
    report.longest_transaction_s = max(report.longest_transaction_s, report.last_transaction_s)
    if progress is not None:
        progress(report)


def run_scheduled() -> PurgeReport:
    """The scheduled purge: bounded by ``WEBHOOKS_PURGE_TIME_LIMIT``, the rest next hour."""
    report = purge(time_limit=conf.PURGE_TIME_LIMIT)
    if report.deliveries or report.events:
        logger.info(
            "Purge: deleted %s%s.", report, "" if report.finished else " (more left for next time)"
        )
    return report


def ensure_schedule(**kwargs) -> None:
    """Create the hourly purge in django-q2's scheduler once; an operator's changes to it
    (another time, or switched off with repeats=0) are kept."""
    from django_q.models import Schedule

    Schedule.objects.get_or_create(
        name=SCHEDULE_NAME,
        defaults={
            "func": "webhooks.tasks.purge",
            "schedule_type": Schedule.HOURLY,
            "repeats": -1,
        },
    )
