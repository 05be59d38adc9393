"""The worker's side: send claimed deliveries and record what happened.

HTTP requests run in a bounded thread pool; all database writes stay in the
calling thread, so a worker holds one connection whatever its concurrency.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from django.db import transaction
from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone

from . import delivery as http
from . import outbox, retries, signals
from .conf import conf
from .models import Delivery, DeliveryAttempt, Subscription

logger = logging.getLogger("webhooks")

AUTOMATIC = DeliveryAttempt.Trigger.AUTOMATIC


def process_event(event_id) -> None:
    """Fan an event out and send its first attempts (the on-commit path)."""
    ids = outbox.fan_out(event_id)
    if ids:
        token, claimed = outbox.claim(ids)
        send_claimed(claimed, token)


def send_claimed(ids, token, trigger: str = AUTOMATIC) -> list[DeliveryAttempt]:
    """Send the deliveries still leased under ``token``; a stale or doubled task sends nothing."""
    now = timezone.now()
    # Renew the lease before sending, so it cannot expire mid-request and let the
    # sweeper hand the same delivery to another worker.
    Delivery.objects.filter(pk__in=ids, lease_token=token, leased_until__gt=now).update(
        leased_until=now + timedelta(seconds=conf.LEASE_SECONDS)
    )
    deliveries = list(
        Delivery.objects.filter(pk__in=ids, lease_token=token, leased_until__gt=now)
        .select_related("event", "subscription")
        .order_by("created_at")
    )
    if trigger == AUTOMATIC:
        inactive = [d for d in deliveries if not d.subscription.is_active]
        if inactive:  # switched off since the claim: keep them pending for when it is back
            _release(inactive, token)
            deliveries = [d for d in deliveries if d.subscription.is_active]
    requests_ = [http.build_request(d) for d in deliveries]
    outcomes = _run_concurrently(http.post, requests_)
    return [
        record_outcome(d, req, out, token=token, trigger=trigger)
        for d, req, out in zip(deliveries, requests_, outcomes, strict=True)
    ]


def _run_concurrently(func, items):
    if len(items) <= 1:
        return [func(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(conf.MAX_CONCURRENCY, len(items))) as pool:
        return list(pool.map(func, items))


def _release(deliveries, token) -> None:
    Delivery.objects.filter(pk__in=[d.pk for d in deliveries], lease_token=token).update(
        lease_token=None, leased_until=None
    )


def record_outcome(
    delivery: Delivery,
    request: http.OutgoingRequest,
    outcome: http.Outcome,
    *,
    token,
    trigger: str = AUTOMATIC,
) -> DeliveryAttempt:
    """Log the attempt, then move the delivery on: done, retry later, or give up."""
    now = timezone.now()
    subscription = delivery.subscription
    disabled_reason = ""
    with transaction.atomic():
        row = Delivery.objects.select_for_update().get(pk=delivery.pk)
        attempt = DeliveryAttempt.objects.create(
            delivery=row,
            number=row.attempt_count + 1,
            trigger=trigger,
            request_url=request.url,
            request_headers=request.logged_headers(subscription.headers or {}),
            request_body=request.body.decode(),
            response_status_code=outcome.status_code,
            response_headers=outcome.headers,
            response_body=outcome.body,
            duration_ms=outcome.duration_ms,
            succeeded=outcome.succeeded,
            error_kind=outcome.error_kind,
            error_message=outcome.error_message[:500],
            created_at=now,
        )
        row.attempt_count = attempt.number
        row.last_status_code = outcome.status_code
        row.last_error = outcome.error_message[:300]
        row.last_attempt_at = now
        if row.lease_token == token:
            row.lease_token = row.leased_until = None
        if outcome.succeeded:
            row.status, row.next_attempt_at = Delivery.Status.SUCCEEDED, None
        elif outcome.status_code == 410:
            row.status, row.next_attempt_at = Delivery.Status.FAILED, None
            disabled_reason = (
                f"The receiver answered 410 Gone on {now:%Y-%m-%d %H:%M} UTC, "
                "asking for no more webhooks."
            )
        elif trigger == AUTOMATIC and row.status == Delivery.Status.PENDING:
            failed = row.attempts.filter(trigger=AUTOMATIC).count()
            delay = retries.retry_delay(failed, outcome.retry_after)
            if delay is None:
                row.status, row.next_attempt_at = Delivery.Status.FAILED, None
            else:
                row.next_attempt_at = now + timedelta(seconds=delay)
        # A failed manual attempt leaves the delivery's own state and schedule as they were.
        row.save()
        _update_health(subscription, outcome.succeeded, now)
        if (
            not disabled_reason
            and row.status == Delivery.Status.FAILED
            and trigger == AUTOMATIC
            and not outcome.succeeded
        ):
            disabled_reason = _failing_too_long(subscription, now)
        if disabled_reason:
            disable(subscription, disabled_reason, now=now)
    _announce(row, attempt, outcome.succeeded, disabled_reason, subscription)
    return attempt


def _update_health(subscription: Subscription, succeeded: bool, now) -> None:
    subs = Subscription.objects.filter(pk=subscription.pk)
    if succeeded:
        subs.filter(consecutive_failures__gt=0).update(consecutive_failures=0, failing_since=None)
    else:
        subs.update(
            consecutive_failures=F("consecutive_failures") + 1,
            failing_since=Coalesce(F("failing_since"), now),
        )


def _failing_too_long(subscription: Subscription, now) -> str:
    limit = conf.DISABLE_AFTER
    if limit is None:
        return ""
    since = Subscription.objects.filter(pk=subscription.pk).values_list("failing_since", flat=True)[
        0
    ]
    if since is not None and since <= now - timedelta(seconds=limit):
        return (
            f"Every delivery has failed since {since:%Y-%m-%d %H:%M} UTC; "
            "re-enable the webhook once the receiver works again."
        )
    return ""


def disable(subscription: Subscription, reason: str, *, now=None) -> bool:
    """Switch a subscription off with a reason; returns False if it already was."""
    now = now or timezone.now()
    changed = Subscription.objects.filter(pk=subscription.pk, is_active=True).update(
        is_active=False, disabled_reason=reason[:300], disabled_at=now
    )
    if changed:
        subscription.is_active, subscription.disabled_reason = False, reason[:300]
        subscription.disabled_at = now
    return bool(changed)


def _announce(delivery, attempt, succeeded, disabled_reason, subscription) -> None:
    def send():
        if succeeded:
            signals.delivery_succeeded.send_robust(Delivery, delivery=delivery, attempt=attempt)
        elif delivery.status == Delivery.Status.FAILED and attempt.trigger == AUTOMATIC:
            signals.delivery_failed.send_robust(Delivery, delivery=delivery, attempt=attempt)
        if disabled_reason and not subscription.is_active:
            signals.subscription_disabled.send_robust(
                Subscription, subscription=subscription, reason=disabled_reason
            )
            logger.warning("Webhook %s disabled: %s", subscription.pk, disabled_reason)

    transaction.on_commit(send, robust=True)
