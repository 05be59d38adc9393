"""What an admin or an API client can do to webhooks: test, resend, recover, rotate.

The admin and the REST API both call these, so the two behave the same.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from . import dispatch, outbox, signing
from .conf import conf
from .exceptions import DeliveryBusy
from .models import Delivery, DeliveryAttempt, Event, EventType, Subscription

MANUAL = DeliveryAttempt.Trigger.MANUAL
TEST_EVENT_TYPE = "webhook.test"


def send_test_event(subscription: Subscription, *, wait: bool = True) -> Delivery:
    """Send a ``webhook.test`` event to this one webhook through the normal path.

    With ``wait`` the request is made now and the delivery comes back with its attempt.
    A test is one attempt: it is never retried, so it ends succeeded or failed.
    """
    now = timezone.now()
    with transaction.atomic():
        event = Event.objects.create(
            type=TEST_EVENT_TYPE,
            data={"subscription_id": str(subscription.pk), "message": "This is a test event."},
            scope=subscription.scope,
            occurred_at=now,
            fanned_out_at=now,
        )
        # No next_attempt_at: the sweeper never picks it up, only this manual attempt sends it.
        delivery = Delivery.objects.create(
            event=event, subscription=subscription, next_attempt_at=None
        )
    _send_manually([delivery.pk], wait=wait)
    delivery.refresh_from_db()
    return delivery


def send_example(subscription: Subscription, type_name: str, *, wait: bool = False) -> Delivery:
    """Send the example payload of ``type_name`` to this one webhook (``webhook.test`` for none).

    Like a test event: one manual attempt, never retried, not counted by the auto-disable clock.
    """
    if not type_name or type_name == TEST_EVENT_TYPE:
        return send_test_event(subscription, wait=wait)
    example = EventType.objects.get(name=type_name).example_payload
    now = timezone.now()
    with transaction.atomic():
        event = Event.objects.create(
            type=type_name,
            data=example,
            scope=subscription.scope,
            occurred_at=now,
            fanned_out_at=now,
        )
        delivery = Delivery.objects.create(
            event=event, subscription=subscription, next_attempt_at=None
        )
    _send_manually([delivery.pk], wait=wait)
    delivery.refresh_from_db()
    return delivery


def example_types(subscription: Subscription) -> list[str]:
    """The event types whose example this webhook can be sent: those it receives."""
    types = EventType.objects.filter(is_active=True).exclude(name=TEST_EVENT_TYPE)
    if not subscription.all_events:
        types = types.filter(subscriptions=subscription)
    return list(types.order_by("category", "name").values_list("name", flat=True))


def resend(deliveries, *, wait: bool = False) -> int:
    """A manual attempt for each delivery (same ``webhook-id``). Returns how many were started."""
    ids = [d.pk if isinstance(d, Delivery) else d for d in deliveries]
    return _send_manually(ids, wait=wait)


def resend_one(delivery: Delivery, *, wait: bool = False) -> Delivery:
    if not resend([delivery], wait=wait):
        raise DeliveryBusy("This delivery is being sent right now; try again in a moment.")
    delivery.refresh_from_db()
    return delivery


def recover(subscription: Subscription, since: datetime, until: datetime | None = None) -> int:
    """Resend every failed delivery of this webhook created in [since, until)."""
    failed = subscription.deliveries.filter(status=Delivery.Status.FAILED, created_at__gte=since)
    if until is not None:
        failed = failed.filter(created_at__lt=until)
    return resend(list(failed.values_list("pk", flat=True)))


def rotate_secret(subscription: Subscription, *, overlap: float | None = None) -> str:
    """Make a new signing secret; the old one keeps signing for ``overlap`` seconds."""
    overlap = conf.SECRET_ROTATION_OVERLAP if overlap is None else overlap
    new_secret = signing.generate_secret()
    subscription.previous_secret = subscription.secret
    subscription.previous_secret_expires_at = timezone.now() + timedelta(seconds=overlap)
    subscription.secret = new_secret
    subscription.save(
        update_fields=["secret", "previous_secret", "previous_secret_expires_at", "updated_at"]
    )
    return new_secret


def _send_manually(ids, *, wait: bool, due_only: bool = False) -> int:
    token, claimed = outbox.claim(ids, due_only=due_only)
    if not claimed:
        return 0
    if wait:
        dispatch.send_claimed(claimed, token, MANUAL)
        return len(claimed)

    def start():
        ids = [str(i) for i in claimed]
        if not outbox.enqueue("webhooks.tasks.deliver", ids, str(token), MANUAL):
            dispatch.send_claimed(claimed, token, MANUAL)  # broker down: here rather than drop it

    # After the caller's transaction (an admin or API request): no HTTP while it is open.
    transaction.on_commit(start, robust=True)
    return len(claimed)
