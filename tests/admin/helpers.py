"""Seeding the delivery log quickly, and reading what the admin said."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from webhooks import health_hours
from webhooks.models import Delivery, DeliveryAttempt, Event

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
    attempts: bool = False,
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
    at = created_at or timezone.now()
    if created_at is not None:
        Delivery.objects.filter(pk__in=[d.pk for d in deliveries]).update(created_at=created_at)
    if not attempts:
        return deliveries
    # Each was tried once, then: its attempt, as the worker records it (in its hour too).
    Delivery.objects.filter(pk__in=[d.pk for d in deliveries]).update(last_attempt_at=at)
    made = DeliveryAttempt.objects.bulk_create(
        DeliveryAttempt(
            delivery=d,
            number=1,
            request_url=subscription.url,
            response_status_code=status_code,
            succeeded=status == Delivery.Status.SUCCEEDED,
            error_kind="" if status_code else "connection_refused",
            duration_ms=40,
            created_at=at,
        )
        for d in deliveries
    )
    health_hours.count(made)
    return deliveries


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def form_errors(response) -> dict:
    return response.context["adminform"].form.errors


def act_in_background(client, url, commit, data=None, *, receiver=None):
    """POST an admin action as a request would run it, then load the page it leads to.

    Nothing may be sent while the request is open (its transaction): the receiver has
    had no request when the POST returns; the work runs once the request commits.
    """
    with commit():
        before = len(receiver.requests) if receiver is not None else 0
        response = client.post(url, data or {})
        assert response.status_code == 302, response.status_code
        if receiver is not None:
            assert len(receiver.requests) == before, "sent inside the request's transaction"
    return client.get(response["Location"])


def progress_text(response) -> str:
    return response.context["progress"]["text"]
