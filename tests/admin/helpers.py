"""Seeding the delivery log quickly, and reading what the admin said."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from webhooks.models import Delivery, Event

ADD_URL = "/admin/webhooks/subscription/add/"
DELIVERIES_URL = "/admin/webhooks/delivery/"


def change_url(obj) -> str:
    return f"/admin/webhooks/{obj._meta.model_name}/{obj.pk}/change/"


def seed(
    subscription,
    count: int,
    *,
    status: str = Delivery.Status.SUCCEEDED,
    created_at: datetime | None = None,
    event_type: str = "article.created",
    status_code: int | None = 200,
) -> list[Delivery]:
    """``count`` deliveries of new events to ``subscription``, all made at ``created_at``."""
    events = Event.objects.bulk_create(
        Event(type=event_type, data={"n": i}, scope=subscription.scope) for i in range(count)
    )
    deliveries = Delivery.objects.bulk_create(
        Delivery(
            event=event,
            subscription=subscription,
            status=status,
            attempt_count=1,
            last_status_code=status_code,
            next_attempt_at=None if status != Delivery.Status.PENDING else timezone.now(),
        )
        for event in events
    )
    if created_at is not None:
        Delivery.objects.filter(pk__in=[d.pk for d in deliveries]).update(created_at=created_at)
    return deliveries


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def form_errors(response) -> dict:
    return response.context["adminform"].form.errors
