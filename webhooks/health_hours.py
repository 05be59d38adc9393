"""Each webhook's attempts per hour, and how many succeeded: what its 24-hour and 7-day
success rates (``webhooks.stats.endpoint``) are summed from, so a webhook's page reads at
most 169 small rows, not every attempt of its week (300,000 for a busy webhook at 10M
attempts: seconds).

The rows are kept exact (a worker's up to a second behind), so the figures keep their
definitions (``webhooks.stats``):

- the recorder adds each group's attempts in the transaction that inserts them
  (``count``), one upsert per (webhook, hour), in key order so that two workers lock the
  rows in the same order (no deadlock); except in a worker's sender (``deferred``), which
  adds up its groups' committed attempts and writes them once a second (``flush``): the
  groups are small when events trickle in, and an upsert per webhook per group was a
  fifth of a row written per delivery. A worker killed outright (SIGKILL, OOM) loses its
  last second of counts from the figures, never an attempt or a delivery;
- deleting a delivery, by hand or by retention, takes its attempts off again (``forget``);
- rows older than ``KEPT`` are never read, and retention deletes them (``purge_old``);
- migration 0014 fills the last ``KEPT`` from the attempts already stored, an hour at a
  time (``backfill``).

A window starts on the hour (``webhooks.stats.window_start``: the "24 hours" count from
the start of the hour 24 hours ago, so they cover 24 to 25 hours; likewise 7 days), as
dashboards of webhook services bucket by hour: the figures are read from these rows
alone, never from the attempts of a partial hour (at 10M attempts that scan joined an
hour of every webhook's attempts with the busy webhook's week of deliveries: 65–193 ms).
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction
from django.db.models import Count, Max, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

#: Rows kept: the longest window read (7 days from the start of an hour) and an hour more.
KEPT = timedelta(days=7, hours=1)
HOUR = timedelta(hours=1)
#: Seconds a worker's sender adds up counts before writing them.
FLUSH_EVERY = 1.0

_this_thread = threading.local()  # .pending: the counts a deferring thread has not written


def hour_of(at: datetime) -> datetime:
    """The start of the hour (UTC) ``at`` is in."""
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def count(attempts) -> None:
    """Add just-inserted attempts (each with its ``delivery`` loaded) to their hours: now,
    or, in a thread that defers, once their transaction has committed."""
    tally = _tally((a.delivery.subscription_id, a.created_at, a.succeeded) for a in attempts)
    pending = getattr(_this_thread, "pending", None)
    if pending is None:
        _add(tally)
    else:
        transaction.on_commit(lambda: _merge(pending, tally))


def deferred() -> None:
    """From now on this thread's ``count`` adds up, and its ``flush`` writes the sum."""
    if getattr(_this_thread, "pending", None) is None:
        _this_thread.pending = {}


def flush() -> None:
    """Write what this thread has added up (one upsert, outside any transaction of its
    own). If that fails, the counts are kept for the next flush."""
    pending = getattr(_this_thread, "pending", None)
    if not pending:
        return
    tally = dict(pending)
    pending.clear()
    try:
        _add(tally)
    except BaseException:
        _merge(pending, tally)
        raise


def _merge(into: dict, tally: dict) -> None:
    for key, figures in tally.items():
        into.setdefault(key, Counter()).update(figures)


def forget(attempts, now: datetime) -> None:
    """Take ``attempts`` (a queryset, about to be deleted) off their hours. Only those of the
    last ``KEPT`` are read: older ones have no row any more."""
    recent = attempts.filter(created_at__gte=now - KEPT).values_list(
        "delivery__subscription_id", "created_at", "succeeded"
    )
    _add(_tally(recent), sign=-1)


def delivery_deleted(sender, instance, **kwargs) -> None:
    """``pre_delete`` of a delivery: its attempts (deleted with it) leave their hours."""
    from .models import DeliveryAttempt

    now = timezone.now()
    # No attempt is later than its delivery's last one: an old delivery has no hours left.
    # (None may be a stale copy of the row: its attempts are looked up.)
    if instance.last_attempt_at is not None and instance.last_attempt_at < now - KEPT:
        return
    forget(DeliveryAttempt.objects.filter(delivery=instance.pk), now)


def purge_old(now: datetime) -> int:
    from .models import HealthHour

    deleted, _ = HealthHour.objects.filter(hour__lt=hour_of(now - KEPT)).delete()
    return deleted


def _tally(rows) -> dict:
    tally: dict = {}
    for subscription_id, at, succeeded in rows:
        figures = tally.setdefault((subscription_id, hour_of(at)), Counter())
        figures["attempts"] += 1
        figures["succeeded"] += bool(succeeded)
    return tally


def _add(tally: dict, *, sign: int = 1, model=None) -> None:
    """One upsert adding ``tally`` ({(webhook id, hour): counts}) to the rows, in key order."""
    if not tally:
        return
    if model is None:
        from .models import HealthHour as model
    ops, quote = connection.ops, connection.ops.quote_name
    table = quote(model._meta.db_table)
    params = []
    for (subscription_id, hour), figures in sorted(tally.items()):
        params += [
            model._meta.get_field("subscription").get_db_prep_value(subscription_id, connection),
            ops.adapt_datetimefield_value(hour),
            sign * figures["attempts"],
            sign * figures["succeeded"],
        ]
    values = ", ".join(["(%s, %s, %s, %s)"] * len(tally))
    insert = (
        f"INSERT INTO {table} (subscription_id, {quote('hour')}, attempts, succeeded) "
        f"VALUES {values} "
    )
    if connection.vendor == "mysql":
        insert += (
            "ON DUPLICATE KEY UPDATE attempts = attempts + VALUES(attempts), "
            "succeeded = succeeded + VALUES(succeeded)"
        )
    else:  # PostgreSQL, SQLite
        insert += (
            f"ON CONFLICT (subscription_id, {quote('hour')}) DO UPDATE SET "
            f"attempts = {table}.attempts + excluded.attempts, "
            f"succeeded = {table}.succeeded + excluded.succeeded"
        )
    with connection.cursor() as cursor:
        cursor.execute(insert, params)


def windows(pk, starts: dict[str, datetime]) -> dict:
    """{name: (attempts, succeeded)} of webhook ``pk`` from each of ``starts`` (each the
    start of an hour), summed from its rows alone (one query, at most ``KEPT`` of them),
    and ``"last_success"``: its newest successful attempt since the earliest of them."""
    from .models import DeliveryAttempt, HealthHour

    _on_the_hour(starts.values())
    hours = HealthHour.objects.filter(subscription=pk, hour__gte=min(starts.values()))
    figures = {}
    for name, first in starts.items():
        figures[f"{name}_n"] = Coalesce(Sum("attempts", filter=Q(hour__gte=first)), 0)
        figures[f"{name}_ok"] = Coalesce(Sum("succeeded", filter=Q(hour__gte=first)), 0)
    summed = hours.aggregate(**figures, last_ok_hour=Max("hour", filter=Q(succeeded__gt=0)))
    result = {name: (summed[f"{name}_n"], summed[f"{name}_ok"]) for name in starts}
    # The newest success is in the newest hour that has one: the webhook's attempts of
    # that hour alone (its deliveries attempted since, through ``webhooks_delivery_attempted``:
    # an attempt is never later than its delivery's last one). One query either way, so
    # the page's count is constant: an empty range when no hour has a success.
    last_hour = summed["last_ok_hour"]
    start = min(starts.values()) if last_hour is None else last_hour
    end = start if last_hour is None else last_hour + HOUR
    result["last_success"] = DeliveryAttempt.objects.filter(
        delivery__subscription=pk,
        succeeded=True,
        created_at__gte=start,
        created_at__lt=end,
        delivery__last_attempt_at__gte=start,
    ).aggregate(at=Max("created_at"))["at"]
    return result


def since_for(pks, since: datetime) -> dict:
    """{webhook id: (attempts, succeeded)} from ``since`` (the start of an hour) of each of
    ``pks`` (a page of a list) that has any: one grouped query of these rows, whatever the
    number of webhooks."""
    from .models import HealthHour

    _on_the_hour([since])
    rows = (
        HealthHour.objects.filter(subscription__in=list(pks), hour__gte=since)
        .order_by()
        .values("subscription")
        .annotate(n=Sum("attempts"), ok=Sum("succeeded"))
    )
    return {row["subscription"]: (row["n"], row["ok"] or 0) for row in rows if row["n"]}


def _on_the_hour(starts) -> None:
    """The rows answer a window only from the start of an hour: anything else is a bug."""
    for start in starts:
        if start != hour_of(start):
            raise ValueError(f"a window starts on the hour, not at {start.isoformat()}")


#: Attempts whose webhook exists (a join: ``delivery__subscription__isnull`` would not
#: join), not those of a deleted webhook whose log is not deleted yet.
_webhook_exists = Q(delivery__subscription__created_at__isnull=False)


def backfill(hour_model, attempt_model, now: datetime) -> None:
    """Fill the rows of the last ``KEPT`` from the stored attempts, an hour at a time (one
    grouped read of that hour's attempts through their ``created_at`` index each)."""
    hour, last = hour_of(now - KEPT), hour_of(now)
    while hour <= last:
        rows = (
            attempt_model.objects.filter(created_at__gte=hour, created_at__lt=hour + HOUR)
            .filter(_webhook_exists)
            .order_by()
            .values("delivery__subscription_id")
            .annotate(n=Count("pk"), ok=Count("pk", filter=Q(succeeded=True)))
        )
        tally = {
            (row["delivery__subscription_id"], hour): {"attempts": row["n"], "succeeded": row["ok"]}
            for row in rows
        }
        _add(tally, model=hour_model)
        hour += HOUR
    # Attempts stamped later than now (another machine's clock): each in its own hour.
    later = attempt_model.objects.filter(_webhook_exists, created_at__gte=hour).values_list(
        "delivery__subscription_id", "created_at", "succeeded"
    )
    _add(_tally(later), model=hour_model)
