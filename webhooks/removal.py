"""Deleting webhooks at once, and their delivery logs after them, at any size.

A busy webhook's log is hundreds of thousands of deliveries (a million attempts at 10M).
Deleting them in the admin's or the API's request took seconds to minutes, however it
was done, and the request died first. So a webhook goes in constant time: its row, its
hourly health rows and its rate-limit slot in one transaction, with a ``DeletedWebhook``
row saying its log is left to delete. Nothing constrains a delivery's webhook in the
database (``Delivery.subscription``), so the log can outlive it for a while; meanwhile it
is out of sight (every page and count joins or looks up the webhook) and never sent (the
claims take deliveries of active webhooks only).

A ``post_delete`` receiver (``webhook_deleted``) does the bookkeeping, so every way of
deleting a webhook through the ORM goes this way. After the commit a task
(``webhooks.tasks.delete_logs``) deletes the log a batch of delivery ids at a time, never
loading it (Django's cascade loaded every row: 328,000 deliveries, 580 MB). The hourly
purge does it again for every webhook still listed, in case the task was lost, and forgets
a webhook once no fan-out begun before its deletion can still add a delivery to it.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.db import router, transaction
from django.utils import timezone

#: Deliveries per batch: their ids in one ``IN`` list (well under every database's limit).
BATCH = 2000

#: A deleted webhook is forgotten this long after its deletion, its log then empty: far
#: longer than a fan-out's transaction, which may have read the webhook just before it went
#: and add a delivery to it just after.
SETTLE = timedelta(hours=1)

#: Enqueued for each webhook deleted, with its id.
TASK = "webhooks.tasks.delete_logs"


def webhook_deleted(sender, instance, using: str = "default", **kwargs) -> None:
    """``post_delete`` of a webhook, however deleted (one row or a queryset, the admin, the
    API, a cascade): record in the deleting transaction that its log is left to delete,
    and enqueue the task that deletes it once that transaction commits."""
    from . import outbox
    from .models import DeletedWebhook

    if instance.pk is None:
        return
    DeletedWebhook.objects.using(using).bulk_create(
        [DeletedWebhook(subscription_id=instance.pk)], ignore_conflicts=True
    )
    ids = [str(instance.pk)]
    transaction.on_commit(lambda: outbox.enqueue(TASK, ids), using=using)


def clear(subscription_ids) -> tuple[int, int]:
    """The task: the logs of those of these webhooks that were deleted (listed in
    ``DeletedWebhook``, and gone); any other id is ignored, whoever enqueued it."""
    from .models import DeletedWebhook, Subscription

    ids = set()
    for value in subscription_ids:
        try:
            ids.add(uuid.UUID(str(value)))
        except ValueError:
            continue
    listed = set(DeletedWebhook.objects.filter(pk__in=ids).values_list("pk", flat=True))
    alive = set(Subscription.objects.filter(pk__in=listed).values_list("pk", flat=True))
    return delete_logs(sorted(listed - alive))


def delete_logs(subscription_ids, *, deadline: float | None = None) -> tuple[int, int]:
    """Delete the deliveries and attempts of these webhooks; (deliveries, attempts).

    Each batch's delivery rows are locked first, as the recorder locks them before it adds
    an attempt: a worker recording an outcome meanwhile either finishes before the batch
    (and its attempt is deleted with it) or finds its delivery gone (and records nothing).
    Stops between batches once ``time.monotonic()`` passes ``deadline``.
    """
    from .models import Delivery, DeliveryAttempt

    db = router.db_for_write(Delivery)
    deliveries = attempts = 0
    for pk in subscription_ids:
        while deadline is None or time.monotonic() < deadline:
            with transaction.atomic(using=db):
                ids = list(
                    Delivery.objects.using(db)
                    .select_for_update()
                    .filter(subscription_id=pk)
                    .order_by()
                    .values_list("pk", flat=True)[:BATCH]
                )
                if not ids:
                    break
                attempts += (
                    DeliveryAttempt.objects.using(db).filter(delivery_id__in=ids)._raw_delete(db)
                )
                deliveries += Delivery.objects.using(db).filter(pk__in=ids)._raw_delete(db)
    return deliveries, attempts


@dataclass
class Cleared:
    deliveries: int = 0
    attempts: int = 0
    finished: bool = True  # False: the time limit stopped it, the rest is for next time


def finish_deleted(*, deadline: float | None = None, now=None) -> Cleared:
    """Delete what is left of every deleted webhook's log (the hourly purge's first step),
    oldest deletion first, until ``time.monotonic()`` passes ``deadline``; forget those
    deleted over ``SETTLE`` ago whose logs are empty."""
    from .models import DeletedWebhook, Subscription

    now = now or timezone.now()
    cleared = Cleared()
    for webhook in DeletedWebhook.objects.order_by("deleted_at"):
        if deadline is not None and time.monotonic() >= deadline:
            cleared.finished = False
            break
        if Subscription.objects.filter(pk=webhook.subscription_id).exists():
            webhook.delete()  # not deleted (a row written by hand): its log is kept
            continue
        deliveries, attempts = delete_logs([webhook.subscription_id], deadline=deadline)
        cleared.deliveries += deliveries
        cleared.attempts += attempts
        if deadline is not None and time.monotonic() >= deadline:
            cleared.finished = False  # maybe cut short: not forgotten before a pass ends
            break
        if webhook.deleted_at < now - SETTLE:
            webhook.delete()
    return cleared
