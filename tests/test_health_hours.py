"""A webhook's hourly rows (webhooks.health_hours), what its success rates are summed from:
the recorder counts each attempt in them, workers recording at once lose none, the
migration's backfill fills them from stored attempts, and deleting a delivery or a purge
takes its attempts off, so the figures stay those of a count of the attempts by hand."""

from __future__ import annotations

import os
import random
import threading
from datetime import timedelta
from unittest import mock

import pytest
from django.db import connections
from django.test import override_settings
from django.utils import timezone

from webhooks import delivery as http
from webhooks import dispatch, health_hours, retention, stats
from webhooks.models import Delivery, DeliveryAttempt, HealthHour

from .factories import DeliveryFactory, SubscriptionFactory

MANUAL = DeliveryAttempt.Trigger.MANUAL


def by_hand(webhook, now) -> tuple[int, int, int, int]:
    """(attempts, succeeded) over 24 hours, then over 7 days (each from the start of its
    hour: ``stats.window_start``), counted from the rows."""
    rows = list(DeliveryAttempt.objects.filter(delivery__subscription=webhook))
    day = [a for a in rows if a.created_at >= stats.window_start(now, stats.DAY)]
    week = [a for a in rows if a.created_at >= stats.window_start(now, stats.WEEK)]
    return (len(day), sum(a.succeeded for a in day), len(week), sum(a.succeeded for a in week))


def figures(webhook, now) -> tuple[int, int, int, int]:
    f = stats.endpoint(webhook, now)
    return (f.attempts_24h, f.succeeded_24h, f.attempts_7d, f.succeeded_7d)


def record(delivery, succeeded: bool, at) -> None:
    """One attempt recorded as a worker records it (``dispatch._record_group``)."""
    outcome = (
        http.Outcome(status_code=200)
        if succeeded
        else http.Outcome(status_code=500, error_kind="http_5xx", error_message="x")
    )
    request = http.OutgoingRequest(delivery.subscription.url, {}, b"{}")
    dispatch._record_group([(delivery, request, outcome, at)], None, MANUAL)


def stored_attempt(delivery, number, at, ok) -> DeliveryAttempt:
    """An attempt written straight to the table, as rows stored before migration 0014."""
    attempt = DeliveryAttempt.objects.create(
        delivery=delivery, number=number, request_url="https://x.example", succeeded=ok
    )
    DeliveryAttempt.objects.filter(pk=attempt.pk).update(created_at=at)
    Delivery.objects.filter(pk=delivery.pk).update(last_attempt_at=at)
    return attempt


def deliveries(rng, count: int, webhook, other):
    """``count`` deliveries, a quarter of them to ``other``, each with its number of tries."""
    for n in range(count):
        yield DeliveryFactory(subscription=other if n % 4 == 0 else webhook), rng.choice((1, 2))


@pytest.mark.django_db
def test_the_recorder_counts_each_attempt_in_its_webhooks_hour():
    now = timezone.now()
    webhook, other = SubscriptionFactory(), SubscriptionFactory()
    rng = random.Random(23)
    for delivery, tries in deliveries(rng, 40, webhook, other):
        for _ in range(tries):
            record(delivery, rng.random() < 0.7, now - timedelta(minutes=rng.uniform(0, 3000)))

    for subscription in (webhook, other):
        assert figures(subscription, now) == by_hand(subscription, now)
    assert sum(HealthHour.objects.values_list("attempts", flat=True)) == (
        DeliveryAttempt.objects.count()
    )


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith(("postgres", "mysql")),
    reason="row locks: needs DATABASE_URL=postgres://… (or mysql:// for MariaDB)",
)
@pytest.mark.django_db(transaction=True)
def test_workers_recording_into_the_same_hours_at_once_lose_no_count():
    """Four workers record attempts of the same two webhooks into the same two hours, in
    different orders, at once: every attempt is counted, once."""
    now = timezone.now()
    webhooks = [SubscriptionFactory(url=f"https://example.com/{n}") for n in range(2)]
    hours = [now - timedelta(minutes=5), now - timedelta(minutes=65)]
    errors, rounds = [], 25
    start = threading.Barrier(4)

    def worker(seed):
        rng = random.Random(seed)
        try:
            mine = [DeliveryFactory(subscription=webhook) for webhook in webhooks]
            start.wait(30)
            for round_number in range(rounds):
                items = []
                for delivery in rng.sample(mine, len(mine)):
                    ok = rng.random() < 0.5
                    outcome = http.Outcome(status_code=200 if ok else 500)
                    request = http.OutgoingRequest(delivery.subscription.url, {}, b"{}")
                    # Each attempt of a delivery ends at its own time, as requests do: a
                    # retried recording tells what it already wrote by (delivery, time).
                    ended = rng.choice(hours) + timedelta(microseconds=round_number)
                    items.append((delivery, request, outcome, ended))
                # As workers record: a transient error (InnoDB's deadlocks on the
                # unique index's gaps, on MariaDB) is retried, the transaction whole.
                dispatch.record_outcomes(items, None, MANUAL)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)

    assert errors == []
    assert DeliveryAttempt.objects.count() == 4 * 2 * rounds
    for webhook in webhooks:
        assert figures(webhook, now) == by_hand(webhook, now)


@pytest.mark.django_db
def test_the_backfill_fills_the_last_week_and_an_hour_from_the_stored_attempts():
    now = timezone.now()
    webhook, other = SubscriptionFactory(), SubscriptionFactory()
    rng = random.Random(14)
    for delivery, tries in deliveries(rng, 60, webhook, other):
        for number in range(1, tries + 1):
            at = now - timedelta(seconds=rng.uniform(-600, 9 * 24 * 3600))  # some later than now
            stored_attempt(delivery, number, at, rng.random() < 0.6)
    assert not HealthHour.objects.exists()

    health_hours.backfill(HealthHour, DeliveryAttempt, now)

    for subscription in (webhook, other):
        assert figures(subscription, now) == by_hand(subscription, now)
    oldest = HealthHour.objects.order_by("hour").first().hour
    assert oldest >= health_hours.hour_of(now - health_hours.KEPT)
    kept = DeliveryAttempt.objects.filter(
        created_at__gte=health_hours.hour_of(now - health_hours.KEPT)
    )
    assert sum(HealthHour.objects.values_list("attempts", flat=True)) == kept.count()


@pytest.mark.django_db
def test_a_deleted_delivery_or_a_purge_takes_the_attempts_off_their_hours():
    now = timezone.now()
    webhook = SubscriptionFactory()
    kept = DeliveryFactory(subscription=webhook, status=Delivery.Status.PENDING)
    record(kept, True, now - timedelta(hours=2))
    deleted = DeliveryFactory(subscription=webhook)
    record(deleted, False, now - timedelta(hours=3))
    purged = DeliveryFactory(subscription=webhook)
    record(purged, True, now - timedelta(hours=30))
    record(purged, False, now - timedelta(hours=29))
    Delivery.objects.filter(pk=purged.pk).update(
        status=Delivery.Status.FAILED, created_at=now - timedelta(days=3)
    )
    assert figures(webhook, now) == (2, 1, 4, 2)

    Delivery.objects.get(pk=deleted.pk).delete()
    assert figures(webhook, now) == by_hand(webhook, now) == (1, 1, 3, 2)

    with override_settings(WEBHOOKS_KEEP_FAILED_DAYS=1):  # a short retention: purged goes
        report = retention.purge(now=now)
    assert report.deliveries == 1
    assert figures(webhook, now) == by_hand(webhook, now) == (1, 1, 1, 1)


@pytest.mark.django_db
def test_the_purge_deletes_hours_no_window_reads_any_more():
    now = timezone.now()
    webhook = SubscriptionFactory()
    for days in (2, 6, 9, 30):
        record(DeliveryFactory(subscription=webhook), True, now - timedelta(days=days))
    assert HealthHour.objects.count() == 4

    retention.purge(now=now)

    assert sorted(HealthHour.objects.values_list("hour", flat=True)) == sorted(
        health_hours.hour_of(now - timedelta(days=days)) for days in (2, 6)
    )
    assert figures(webhook, now) == by_hand(webhook, now) == (0, 0, 2, 2)


@pytest.mark.django_db(transaction=True)
def test_a_worker_sender_writes_its_counts_once_a_flush_not_once_a_group():
    """In a worker's sender (``health_hours.deferred``) the groups' committed attempts are
    added up and written by ``flush``, one upsert for all; a group that rolls back adds
    nothing; a failed flush keeps its counts for the next."""
    from django.db import transaction

    now = timezone.now()
    webhook, other = SubscriptionFactory(), SubscriptionFactory()
    mine = [DeliveryFactory(subscription=w) for w in (webhook, other, webhook)]
    seen: dict = {}

    def sender_thread():
        health_hours.deferred()
        try:
            for n, delivery in enumerate(mine):
                record(delivery, n != 1, now - timedelta(minutes=n))
            seen["before flush"] = HealthHour.objects.count()
            try:
                with transaction.atomic():
                    record(DeliveryFactory(subscription=webhook), True, now)
                    raise RuntimeError("the group's transaction rolls back")
            except RuntimeError:
                pass
            with mock.patch.object(health_hours, "_add", side_effect=OSError("database down")):
                with pytest.raises(OSError):
                    health_hours.flush()
            seen["after failed flush"] = HealthHour.objects.count()
            health_hours.flush()
        finally:
            connections.close_all()

    thread = threading.Thread(target=sender_thread)
    thread.start()
    thread.join(60)

    assert seen == {"before flush": 0, "after failed flush": 0}
    assert DeliveryAttempt.objects.count() == 3
    for subscription in (webhook, other):
        assert figures(subscription, now) == by_hand(subscription, now)
    assert sum(HealthHour.objects.values_list("attempts", flat=True)) == 3
    # Elsewhere (this thread) the recorder writes at once, as before.
    record(DeliveryFactory(subscription=other), True, now)
    assert figures(other, now) == by_hand(other, now) == (2, 1, 2, 1)
