"""Deleting webhooks with their delivery logs, at any size.

Django's own cascade loads every row it deletes, and here it must: ``health_hours``
listens to each delivery's ``pre_delete``. A busy webhook's log is hundreds of thousands
of deliveries (a million attempts at 10M), so deleting one from the admin or the API
took minutes and hundreds of MB, and the request usually died first. Its log goes
here instead, a batch of delivery ids at a time, each batch's attempts and deliveries by
two plain DELETEs; the webhook's hourly health rows go with the webhook itself, so no
count needs taking off.
"""

from __future__ import annotations

from django.db import router, transaction

#: Deliveries per batch: their ids in one ``IN`` list (well under every database's limit).
BATCH = 2000


def delete_logs(subscription_ids) -> tuple[int, int]:
    """Delete the deliveries and attempts of these webhooks; (deliveries, attempts).

    Each batch's delivery rows are locked first, as the recorder locks them before it adds
    an attempt: a worker recording an outcome meanwhile either finishes before the batch
    (and its attempt is deleted with it) or finds its delivery gone (and records nothing).
    """
    from .models import Delivery, DeliveryAttempt

    db = router.db_for_write(Delivery)
    deliveries = attempts = 0
    for pk in subscription_ids:
        while True:
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
