"""Telling people when their webhook stops working: an e-mail to its owner, and an
operational event (``webhook.disabled``, ``webhook.failing``) that the tenant's other
webhooks can subscribe to, as Svix does.

Built on the public signals, so the engine knows nothing of it. The signals are sent
after the outcome is committed, so nothing here runs inside the engine's transaction;
and a failure here (a mail server down) is logged, never raised into the worker.
"""

from __future__ import annotations

import logging

from django.core.mail import send_mail
from django.dispatch import receiver
from django.utils import timezone

from . import signals
from .builtin_events import OPERATIONAL_TYPES
from .conf import conf
from .models import Delivery, Subscription

logger = logging.getLogger("webhooks")

DISABLED, FAILING = OPERATIONAL_TYPES


@receiver(signals.subscription_disabled, dispatch_uid="webhooks.notify_disabled")
def webhook_disabled(sender, subscription: Subscription, reason: str, **kwargs) -> None:
    data = {**_about(subscription), "reason": reason}
    _raise_event(DISABLED, data, subscription)
    _mail_owner(
        subscription,
        f"Your webhook was disabled: {subscription}",
        f"Your webhook {subscription} ({subscription.url}) was switched off and receives "
        f"no more events.\n\nWhy: {reason}\n\nOnce the receiver works again, switch the "
        "webhook back on and resend what it missed (\u201cResend failed\u201d on its page).",
    )


@receiver(signals.delivery_failed, dispatch_uid="webhooks.notify_failing")
def delivery_given_up(sender, delivery: Delivery, attempt, **kwargs) -> None:
    """The first delivery given up since the webhook last succeeded: it has started failing."""
    subscription = Subscription.objects.filter(pk=delivery.subscription_id).first()
    if subscription is None or not subscription.is_active or subscription.failing_since is None:
        return  # gone, or disabled (that has its own notice), or working again
    earlier = (
        Delivery.objects.filter(
            subscription=subscription,
            status=Delivery.Status.FAILED,
            updated_at__gte=subscription.failing_since,  # recorded in this run of failures
        )
        .exclude(pk=delivery.pk)
        .exists()
    )
    if earlier:
        return  # already told for this run of failures
    since = timezone.localtime(subscription.failing_since)
    last_error = str(delivery.last_error or delivery.last_status_code or "none").rstrip(".")
    data = {
        **_about(subscription),
        "failing_since": subscription.failing_since.isoformat(),
        "consecutive_failures": subscription.consecutive_failures,
    }
    _raise_event(FAILING, data, subscription)
    _mail_owner(
        subscription,
        f"Your webhook is failing: {subscription}",
        f"Your webhook {subscription} ({subscription.url}) has failed every delivery since "
        f"{since:%Y-%m-%d %H:%M %Z}; one event was given up after all its retries. "
        f"Last error: {last_error}."
        "\n\nIf it keeps failing it will be switched off. Check the receiver, then resend "
        "what it missed.",
    )


def _about(subscription: Subscription) -> dict:
    return {
        "subscription_id": str(subscription.pk),
        "url": subscription.url,
        "description": subscription.description,
    }


def _raise_event(type_name: str, data: dict, subscription: Subscription) -> None:
    from . import send_event

    try:
        send_event(type_name, data, scope=subscription.scope)
    except Exception:  # noqa: BLE001 - a notice must never break the worker that sent it
        logger.warning(
            "Could not raise %s for webhook %s", type_name, subscription.pk, exc_info=True
        )


def _mail_owner(subscription: Subscription, subject: str, body: str) -> None:
    owner = subscription.owner
    if not conf.NOTIFY_OWNERS or owner is None or not getattr(owner, "email", ""):
        return
    try:
        send_mail(subject, body, None, [owner.email])
    except Exception:  # noqa: BLE001 - a mail server down is logged, not raised
        logger.warning("Could not e-mail the owner of webhook %s", subscription.pk, exc_info=True)
