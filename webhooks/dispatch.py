"""The worker's side: send claimed deliveries and record what happened.

HTTP requests run in a bounded thread pool (``WEBHOOKS_MAX_CONCURRENCY`` in flight per
worker, at most ``WEBHOOKS_MAX_CONCURRENCY_PER_ENDPOINT`` of them to one endpoint, so one
slow receiver cannot hold every slot). All database writes stay in the calling thread,
so a worker holds one connection whatever its concurrency; each outcome is recorded as
soon as its request ends, not when the whole batch is done.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter, deque
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from datetime import timedelta
from urllib.parse import urlsplit

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
    """Fan an event out and send its first attempts (the on-commit path).

    Under load many of these tasks wait in the queue at once, so each one run by a worker
    also fans out other events still waiting for theirs and fills its batch with other due
    deliveries: the first tasks of a burst do the work in batches of ``WEBHOOKS_BATCH_SIZE``,
    the later ones find nothing left and end at once. Claims keep every delivery single-sent.
    """
    own = outbox.fan_out(event_id)
    batch = max(1, conf.BATCH_SIZE)
    chunks = [own[i : i + batch] for i in range(0, len(own), batch)] or [[]]
    for chunk in chunks[:-1]:  # a very wide fan-out goes out batch by batch
        token, claimed = outbox.claim(chunk)
        if claimed:
            send_claimed(claimed, token)
    token, claimed = outbox.claim(chunks[-1]) if chunks[-1] else (None, [])
    if _run_by_workers():  # inline (sync mode) there is no queue, and it is the host's time
        outbox.fan_out_pending(limit=batch)
        if len(claimed) < batch:
            token, more = outbox.claim_due(batch - len(claimed), token=token)
            claimed = [*claimed, *more]
    if claimed:
        send_claimed(claimed, token)


def _run_by_workers() -> bool:
    """True when tasks go through the broker to workers, False in django-q2's sync mode."""
    from django_q.conf import Conf

    return not Conf.SYNC


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
    return _send_all(deliveries, token, trigger)


def endpoint_key(url: str) -> str:
    """What the per-endpoint cap counts by: scheme, host and port of the target."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return url
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"


def send_budget() -> float:
    """Seconds after the lease renewal during which a batch may still start requests.

    A request started within it ends (connect + read timeouts) before the lease runs out
    and before django-q2 kills the task; what is left is given back, still due.
    """
    limit = conf.LEASE_SECONDS
    try:
        from django_q.conf import Conf

        if Conf.TIMEOUT:
            limit = min(limit, float(Conf.TIMEOUT))
    except Exception:  # noqa: BLE001 - django-q2 not configured: the lease alone bounds it
        pass
    return max(0.0, limit - 2 * conf.TIMEOUT - 1.0)


def _send_all(deliveries, token, trigger) -> list[DeliveryAttempt]:
    """POST every delivery, ``MAX_CONCURRENCY`` at a time and round-robin over endpoints."""
    if not deliveries:
        return []
    deadline = time.monotonic() + send_budget()
    limit = max(1, conf.MAX_CONCURRENCY)
    per_endpoint = max(1, min(limit, conf.MAX_CONCURRENCY_PER_ENDPOINT))
    waiting: dict[str, deque[int]] = {}
    for index, d in enumerate(deliveries):
        waiting.setdefault(endpoint_key(d.subscription.url), deque()).append(index)
    attempts: list[DeliveryAttempt | None] = [None] * len(deliveries)
    requests_: dict[int, http.OutgoingRequest] = {}
    in_flight: dict = {}
    busy: Counter[str] = Counter()
    pool = _pool(limit) if len(deliveries) > 1 else None
    started_any = False
    while waiting or in_flight:
        if waiting and started_any and time.monotonic() > deadline:
            left = [deliveries[i] for queue in waiting.values() for i in queue]
            logger.info("Batch out of time: %d deliveries given back, still due.", len(left))
            _release(left, token)
            waiting.clear()
        # Start requests round-robin over endpoints, within both caps.
        progressed = True
        while progressed and waiting and len(in_flight) < limit:
            progressed = False
            for key in list(waiting):
                if len(in_flight) >= limit:
                    break
                if busy[key] >= per_endpoint:
                    continue
                queue = waiting[key]
                index = queue.popleft()
                if not queue:
                    del waiting[key]
                request = requests_[index] = http.build_request(deliveries[index])
                if pool is None:
                    future = _Done(http.post(request))
                else:
                    future = pool.submit(http.post, request)
                in_flight[future] = (index, key)
                busy[key] += 1
                started_any = progressed = True
        if not in_flight:
            continue
        done = [f for f in in_flight if isinstance(f, _Done)]
        if not done:
            done, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
        finished = []
        for future in done:
            index, key = in_flight.pop(future)
            busy[key] -= 1
            finished.append((index, future.result()))
        # The requests that ended together are recorded in one transaction (one commit);
        # successes, the common case, with a constant number of queries.
        with transaction.atomic():
            ok = [(i, out) for i, out in finished if out.succeeded]
            recorded = _record_successes(
                [(deliveries[i], requests_[i], out) for i, out in ok], token=token, trigger=trigger
            )
            for (index, _), attempt in zip(ok, recorded, strict=True):
                attempts[index] = attempt
            for index, outcome in finished:
                if not outcome.succeeded:
                    attempts[index] = record_outcome(
                        deliveries[index], requests_[index], outcome, token=token, trigger=trigger
                    )
    return [a for a in attempts if a is not None]


class _Done:
    """A finished "future" for the single-request path (no thread needed)."""

    def __init__(self, value) -> None:
        self._value = value

    def result(self):
        return self._value


_pool_lock = threading.Lock()
_pool_state: dict = {}


def _pool(size: int) -> ThreadPoolExecutor:
    """This process's request threads, kept between batches so their sessions keep
    connections alive; made again after a fork or a change of ``MAX_CONCURRENCY``."""
    with _pool_lock:
        key = (os.getpid(), size)
        if _pool_state.get("key") != key:
            _pool_state["key"] = key
            _pool_state["pool"] = ThreadPoolExecutor(
                max_workers=size, thread_name_prefix="webhooks-send"
            )
        return _pool_state["pool"]


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
    # savepoint=False: inside a batch's transaction (``_record_all``) no savepoint per row.
    with transaction.atomic(savepoint=False):
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
        elif row.status == Delivery.Status.PENDING and row.next_attempt_at is None:
            # A one-shot delivery (a test event) has no schedule to go back to: it failed.
            row.status = Delivery.Status.FAILED
        # Otherwise a failed manual attempt leaves the delivery's state and schedule as they were.
        row.save()
        if trigger == AUTOMATIC or outcome.succeeded:
            # A failed test or manual resend says nothing new: it does not feed the disable clock.
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


_SUCCESS_FIELDS = [
    "attempt_count",
    "last_status_code",
    "last_error",
    "last_attempt_at",
    "lease_token",
    "leased_until",
    "status",
    "next_attempt_at",
    "updated_at",
]


def _record_successes(items, *, token, trigger) -> list[DeliveryAttempt | None]:
    """``record_outcome`` for several successful attempts at once (same rows, same effects)."""
    if not items:
        return []
    now = timezone.now()
    with transaction.atomic(savepoint=False):
        rows = Delivery.objects.select_for_update().in_bulk([d.pk for d, _, _ in items])
        attempts: list[DeliveryAttempt | None] = []
        for delivery, request, outcome in items:
            row = rows.get(delivery.pk)
            if row is None:  # deleted meanwhile: nothing to record
                attempts.append(None)
                continue
            attempts.append(
                DeliveryAttempt(
                    delivery=row,
                    number=row.attempt_count + 1,
                    trigger=trigger,
                    request_url=request.url,
                    request_headers=request.logged_headers(delivery.subscription.headers or {}),
                    request_body=request.body.decode(),
                    response_status_code=outcome.status_code,
                    response_headers=outcome.headers,
                    response_body=outcome.body,
                    duration_ms=outcome.duration_ms,
                    succeeded=True,
                    error_kind="",
                    error_message="",
                    created_at=now,
                )
            )
            row.attempt_count += 1
            row.last_status_code = outcome.status_code
            row.last_error = ""
            row.last_attempt_at = row.updated_at = now
            if row.lease_token == token:
                row.lease_token = row.leased_until = None
            row.status, row.next_attempt_at = Delivery.Status.SUCCEEDED, None
        DeliveryAttempt.objects.bulk_create([a for a in attempts if a is not None])
        Delivery.objects.bulk_update(list(rows.values()), _SUCCESS_FIELDS)
        Subscription.objects.filter(
            pk__in={d.subscription_id for d, _, _ in items}, consecutive_failures__gt=0
        ).update(consecutive_failures=0, failing_since=None)
    for (delivery, _, _), attempt in zip(items, attempts, strict=True):
        if attempt is not None:
            _announce(rows[delivery.pk], attempt, True, "", delivery.subscription)
    return attempts


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
