"""Rate limits customers set: at most ``Subscription.rate_limit`` messages per second.

The limit holds across every worker process on every host, because its state is one
database row per webhook (``RateLimitSlot``), taken in a short transaction with the row
locked. The algorithm is GCRA (the generic cell rate algorithm, "theoretical arrival
time"): the row holds when the webhook's next message may go; each message sent moves it
on by 1/limit seconds. Deliveries it postpones wait in a line (``queued_until``), so a
backlog comes back due at the limit's pace. Up to one second's worth of messages
(``limit``) may go at once, so a batch claimed by a worker, or a poll of the sweeper
once a second, can use the whole rate: one second may hold up to twice the limit, any
longer window at most the limit plus that one second's worth.

Deliveries over the limit are not sent, not counted as attempts and not dropped: they
are given back pending, with ``next_attempt_at`` the moment their turn comes, and
``wakeups.due_at`` is told. No worker waits for them.

Only automatic attempts are limited: a test event or a resend someone asked for goes at
once, and does not use the webhook's rate.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import DatabaseError, transaction
from django.db.models import Case, DateTimeField, Value, When
from django.utils import timezone

from . import wakeups
from .models import Delivery, RateLimitSlot
from .validation import MAX_RATE_LIMIT

logger = logging.getLogger("webhooks.ratelimit")

#: How much of the rate may go at once after a quiet spell, in seconds' worth.
BURST_SECONDS = 1.0


def rate_of(subscription) -> int | None:
    """The webhook's limit in messages per second, or None. A stored value is untrusted:
    one out of range (written without the forms) is brought into it, never an error."""
    value = getattr(subscription, "rate_limit", None)
    if value is None or isinstance(value, bool):
        return None
    try:
        value = int(value)
    except (TypeError, ValueError):
        return None
    return min(max(value, 1), MAX_RATE_LIMIT)


def admit(deliveries: list, token, *, new: bool = False, now: datetime | None = None) -> list:
    """The deliveries that may be sent now; the others are given back for later.

    ``deliveries`` (with ``subscription`` attached, oldest first) are leased under
    ``token``. Those of webhooks without a limit are always admitted, untouched. ``new``:
    first attempts straight from the fan-out, which go behind deliveries already waiting
    their turn; the others (claimed because they are due) have waited theirs.
    """
    rates = {d.subscription_id: rate_of(d.subscription) for d in deliveries}
    rates = {pk: rate for pk, rate in rates.items() if rate}
    if not rates:
        return deliveries
    try:
        admitted, postponed = reserve(deliveries, rates, new=new, now=now)
    except DatabaseError:
        # The limit cannot be read (e.g. the webhook was deleted meanwhile): its deliveries
        # are given back still due, and the others go as if it had no part in the batch.
        logger.warning(
            "Rate limit could not be checked; limited deliveries given back.", exc_info=True
        )
        held = [d for d in deliveries if d.subscription_id in rates]
        Delivery.objects.filter(pk__in=[d.pk for d in held], lease_token=token).update(
            lease_token=None, leased_until=None
        )
        return [d for d in deliveries if d.subscription_id not in rates]
    if postponed:
        postpone(postponed, token)
    return admitted


def reserve(deliveries: list, rates: dict, *, new: bool = False, now: datetime | None = None):
    """Take this instant's slots of the limited webhooks, in one short transaction.

    Returns (admitted deliveries, [(delivery, when its turn comes)]). What may be sent is
    decided by ``next_at`` alone, so the limit holds whoever asks. The turns given to
    postponed deliveries form a line (``queued_until``, the last turn given): each is due
    1/limit after the one before, so a backlog comes back due at the limit's pace, about
    as many per second as may go, instead of all at once and postponed again.
    """
    ids = sorted(rates, key=str)  # rows locked in one order: two workers cannot deadlock
    with transaction.atomic():
        # A write first: on SQLite it takes the database's write lock before anything is
        # read (so two processes cannot both read the same clock); elsewhere it makes the
        # missing rows, which the next statement locks.
        start = now or timezone.now()
        RateLimitSlot.objects.bulk_create(
            [RateLimitSlot(subscription_id=pk, next_at=start) for pk in ids],
            ignore_conflicts=True,
        )
        slots = {
            row.pk: row
            for row in RateLimitSlot.objects.select_for_update().filter(pk__in=ids).order_by("pk")
        }
        now = now or timezone.now()  # after waiting for the lock
        clocks = {pk: max(slot.next_at, now) for pk, slot in slots.items()}
        lines = {pk: slot.queued_until for pk, slot in slots.items()}
        admitted, postponed = [], []
        for d in deliveries:
            pk = d.subscription_id
            if pk not in rates or pk not in slots:
                admitted.append(d)
                continue
            interval = timedelta(seconds=1 / rates[pk])
            tolerance = timedelta(seconds=BURST_SECONDS) - interval
            line = lines[pk]
            waiting = line is not None and line > now
            if clocks[pk] <= now + tolerance and not (new and waiting):
                admitted.append(d)
                clocks[pk] += interval
                continue
            # Behind the last one waiting, and not before the limit would let it go.
            turn = max(clocks[pk] - tolerance, now)
            if waiting:
                turn = max(turn, line + interval)
            lines[pk] = turn
            postponed.append((d, turn))
        for pk, slot in slots.items():
            if (clocks[pk], lines[pk]) != (max(slot.next_at, now), slot.queued_until):
                RateLimitSlot.objects.filter(pk=pk).update(
                    next_at=clocks[pk], queued_until=lines[pk]
                )
    return admitted, postponed


def postpone(postponed: list, token) -> None:
    """Give deliveries back pending, each due when its turn comes: not sent, not an
    attempt, not a failure. A delivery no longer leased under ``token`` is left alone."""
    times = {d.pk: when for d, when in postponed}
    Delivery.objects.filter(pk__in=list(times), lease_token=token).update(
        lease_token=None,
        leased_until=None,
        next_attempt_at=Case(
            *(When(pk=pk, then=Value(when)) for pk, when in times.items()),
            output_field=DateTimeField(),
        ),
    )
    logger.info("Rate limit: %d deliveries postponed, each to its turn.", len(times))
    for when in sorted(set(times.values())):
        wakeups.due_at(when)
