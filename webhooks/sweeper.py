"""The sweeper: the clock that repairs lost enqueues, fires due retries, and reclaims
deliveries whose worker died.

django-q2 schedules fire at most about once every 30 s, while the first retry is
due after 5 s, so one scheduled sweep keeps polling (cheap indexed queries) for
``WEBHOOKS_SWEEP_DURATION`` seconds before it exits.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from django.db import close_old_connections
from django.utils import timezone

from . import outbox
from .conf import conf
from .models import Delivery

logger = logging.getLogger("webhooks")

SCHEDULE_NAME = "webhooks: sweep"
MAX_PER_SWEEP = 5000


@dataclass
class SweepReport:
    events_fanned_out: int = 0
    deliveries_enqueued: int = 0

    def __bool__(self) -> bool:
        return bool(self.events_fanned_out or self.deliveries_enqueued)


def sweep_once(*, now=None) -> SweepReport:
    now = now or timezone.now()
    report = SweepReport()
    lost = outbox.unfanned_events(now=now)
    if lost:
        # One transaction and a constant number of queries, however many were lost.
        outbox.fan_out_many(lost, skip_locked=True)
        report.events_fanned_out = len(lost)
    while report.deliveries_enqueued < MAX_PER_SWEEP:
        token, ids = outbox.claim_due(conf.BATCH_SIZE, now=now)
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
    if report:
        logger.info(
            "Sweep: %d events fanned out, %d deliveries enqueued.",
            report.events_fanned_out,
            report.deliveries_enqueued,
        )
    return report


def run(duration: float | None = None) -> SweepReport:
    """Sweep repeatedly for ``duration`` seconds (default ``WEBHOOKS_SWEEP_DURATION``)."""
    duration = conf.SWEEP_DURATION if duration is None else duration
    deadline = time.monotonic() + duration
    total = SweepReport()
    while True:
        report = sweep_once()
        total.events_fanned_out += report.events_fanned_out
        total.deliveries_enqueued += report.deliveries_enqueued
        if time.monotonic() + conf.POLL_INTERVAL >= deadline:
            return total
        time.sleep(conf.POLL_INTERVAL)
        close_old_connections()


def run_scheduled() -> SweepReport:
    """The scheduled sweep: poll until the next scheduled sweep is due, at most
    ``WEBHOOKS_SWEEP_DURATION`` seconds, so two sweeps never hold two workers at once."""
    from django_q.models import Schedule

    duration = conf.SWEEP_DURATION
    next_run = Schedule.objects.filter(name=SCHEDULE_NAME).values_list("next_run", flat=True)
    if next_run and next_run[0] is not None:
        until_next = (next_run[0] - timezone.now()).total_seconds() - conf.POLL_INTERVAL
        duration = max(0.0, min(duration, until_next))
    return run(duration)


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
