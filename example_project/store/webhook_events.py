"""``store.purchase``: declared only where the store is switched on.

``EXAMPLE_STORE_ENABLED`` is read when the registry is built at start-up: an
installation without a store has no such event type at all (nothing to subscribe to,
nothing in the event table).
"""

from django.conf import settings

import webhooks
from example_project.organisations.models import scope_of

from .models import Purchase


def purchase_payload(purchase):
    return {
        "id": purchase.pk,
        "user": {"id": purchase.user_id, "username": purchase.user.username},
        "product": {"id": purchase.product_id, "name": purchase.product.name},
        "quantity": purchase.quantity,
        "amount": str(purchase.amount),
        "currency": purchase.currency,
        "organisation_id": purchase.organisation_id,
        "purchased_at": purchase.purchased_at.isoformat(),
    }


if settings.EXAMPLE_STORE_ENABLED:
    webhooks.event_type(
        "store.purchase",
        category="Store",
        description="A user made a purchase in the store (only where the store is switched on).",
        example={
            "id": 17,
            "user": {"id": 12, "username": "ada"},
            "product": {"id": 3, "name": "Exam voucher"},
            "quantity": 1,
            "amount": "25.00",
            "currency": "GBP",
            "organisation_id": 1,
            "purchased_at": "2026-11-23T09:00:00+00:00",
        },
    )
    webhooks.on_create(
        Purchase,
        "store.purchase",
        payload=purchase_payload,
        scope=lambda purchase: scope_of(purchase.organisation_id),
    )
