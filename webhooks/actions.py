"""What an admin or an API client can do to webhooks: test, resend, recover, rotate,
disable and enable.

The admin and the REST API both call these, so the two behave the same.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial

from django.db import transaction
from django.utils import timezone

from . import outbox, signing, validation
from .builtin_events import OPERATIONAL_TYPES
from .conf import conf
from .exceptions import DeliveryBusy
from .models import Delivery, Event, EventType, Subscription

TEST_EVENT_TYPE = "webhook.test"


def send_test_event(subscription: Subscription) -> Delivery:
    """Queue a ``webhook.test`` event to this one webhook, through the normal path.

    Nothing is sent in the caller's thread or transaction: the delivery comes back pending
    and is sent by a worker once the caller's transaction commits (or by the sweeper if
    the broker is down). A test is one attempt: never retried, it ends succeeded or failed.
    """
    data = {"subscription_id": str(subscription.pk), "message": "This is a test event."}
    return _send_one_off(subscription, TEST_EVENT_TYPE, data)


def send_example(subscription: Subscription, type_name: str) -> Delivery:
    """Queue the example payload of ``type_name`` to this one webhook (``webhook.test`` for none).

    Like a test event: one manual attempt, never retried, not counted by the auto-disable clock.
    """
    if not type_name or type_name == TEST_EVENT_TYPE:
        return send_test_event(subscription)
    example = EventType.objects.get(name=type_name).example_payload
    return _send_one_off(subscription, type_name, example)


def send_payload(subscription: Subscription, type_name: str, data) -> Delivery:
    """Queue a ``type_name`` event carrying ``data`` (e.g. an edited example) to this webhook.

    Like :func:`send_example`: one manual attempt, never retried. ``data`` that no database
    or receiver would take raises :class:`~webhooks.exceptions.InvalidPayload`, saying why,
    and nothing is written. The caller checks that the webhook receives ``type_name``.
    """
    data = validation.to_json_data(data, event_type=type_name)
    return _send_one_off(subscription, type_name, data)


def example_types(subscription: Subscription) -> list[str]:
    """The event types whose example this webhook can be sent: those it receives."""
    types = EventType.objects.filter(is_active=True).exclude(name=TEST_EVENT_TYPE)
    if subscription.all_events:
        # As in the fan-out: "all events" are the platform's; notices about webhooks
        # themselves go only to webhooks that chose them.
        types = types.exclude(name__in=OPERATIONAL_TYPES)
    else:
        types = types.filter(subscriptions=subscription)
    return list(types.order_by("category", "name").values_list("name", flat=True))


def _send_one_off(subscription: Subscription, type_name: str, data) -> Delivery:
    now = timezone.now()
    with transaction.atomic():
        event = Event.objects.create(
            type=type_name, data=data, scope=subscription.scope, occurred_at=now, fanned_out_at=now
        )
        # No next_attempt_at: no automatic attempt, only the requested manual one sends it.
        delivery = Delivery.objects.create(
            event=event, subscription=subscription, next_attempt_at=None, resend_requested_at=now
        )
        _enqueue_after_commit([delivery.pk])
    return delivery


def resend(deliveries) -> int:
    """Queue a manual attempt (same ``webhook-id``) for each delivery; returns how many.

    The requests are written in the caller's transaction and enqueued after it commits,
    in batches; none is dropped, whatever their number or the broker's state: what is not
    enqueued now, or is given back by a worker out of time, the sweeper sends later.
    """
    ids = [d.pk if isinstance(d, Delivery) else d for d in deliveries]
    if not ids:
        return 0
    with transaction.atomic():
        count = 0
        for start in range(0, len(ids), REQUEST_CHUNK):
            count += Delivery.objects.filter(pk__in=ids[start : start + REQUEST_CHUNK]).update(
                resend_requested_at=timezone.now()
            )
        _enqueue_after_commit(ids)
    return count


def resend_one(delivery: Delivery) -> Delivery:
    """Queue a manual attempt; refused while a worker is sending this delivery right now."""
    if Delivery.objects.filter(pk=delivery.pk, leased_until__gt=timezone.now()).exists():
        raise DeliveryBusy("This delivery is being sent right now; try again in a moment.")
    resend([delivery.pk])
    delivery.refresh_from_db()
    return delivery


def recover(subscription: Subscription, since: datetime, until: datetime | None = None) -> int:
    """Queue a resend of every failed delivery of this webhook created in [since, until).

    Returns how many were queued; every one of them is sent eventually.
    """
    failed = subscription.deliveries.filter(status=Delivery.Status.FAILED, created_at__gte=since)
    if until is not None:
        failed = failed.filter(created_at__lt=until)
    return resend(list(failed.values_list("pk", flat=True)))


def rotate_secret(subscription: Subscription, *, overlap: float | None = None) -> str:
    """Make a new signing secret; the old one keeps signing for ``overlap`` seconds (0: it
    stops at once; None: ``WEBHOOKS_SECRET_ROTATION_OVERLAP``).

    An old secret that cannot sign (it cannot be decrypted, or is no valid secret) is
    dropped instead: rotating is how such a webhook is repaired.
    """
    overlap = conf.SECRET_ROTATION_OVERLAP if overlap is None else overlap
    new_secret = signing.generate_secret()
    if overlap > 0 and signing.secret_problem(subscription.secret) is None:
        subscription.previous_secret = subscription.secret
        subscription.previous_secret_expires_at = timezone.now() + timedelta(seconds=overlap)
    else:
        subscription.previous_secret, subscription.previous_secret_expires_at = "", None
    subscription.secret = new_secret
    subscription.save(
        update_fields=["secret", "previous_secret", "previous_secret_expires_at", "updated_at"]
    )
    return new_secret


#: The longest reason a webhook is disabled for (the column's length).
REASON_LENGTH = 300


def enabled_fields() -> dict:
    """A webhook switched (back) on starts afresh: with its old failure streak it would be
    disabled again by the next failure."""
    return {
        "is_active": True,
        "disabled_reason": "",
        "disabled_at": None,
        "consecutive_failures": 0,
        "failing_since": None,
    }


def disabled_fields(reason: str) -> dict:
    """A webhook switched off by a person: why, and when."""
    return {
        "is_active": False,
        "disabled_reason": reason[:REASON_LENGTH],
        "disabled_at": timezone.now(),
    }


def enable(subscriptions) -> int:
    """Switch the webhooks of a queryset on, clearing their failure state (those that were
    off); returns how many were switched. What they are owed is sent from then on."""
    return subscriptions.filter(is_active=False).update(
        **enabled_fields(), updated_at=timezone.now()
    )


def disable(subscriptions, reason: str) -> int:
    """Switch the webhooks of a queryset off with ``reason``; returns how many were on.
    Their deliveries are held, not dropped, until they are enabled again."""
    return subscriptions.filter(is_active=True).update(
        **disabled_fields(reason), updated_at=timezone.now()
    )


#: Ids per UPDATE when requests are recorded (keeps every query's parameter list short).
REQUEST_CHUNK = 500
#: Batches enqueued straight after the commit; more are left to the sweeper, so that the
#: caller (often a web request) does not spend long enqueueing a very large recovery.
ENQUEUE_NOW_BATCHES = 20


def _enqueue_after_commit(ids) -> None:
    transaction.on_commit(
        partial(outbox.enqueue_requested, list(ids), ENQUEUE_NOW_BATCHES), robust=True
    )
