"""A webhook's figures over 24 hours and 7 days (webhooks.stats), read from covering indexes
(migration 0012): exactly the attempts of the window, at its edges too, whatever triggered
them, and nothing of a deleted delivery; the same numbers in the admin's list, the portal's
list and the webhook's page. On SQLite, each count is answered from an index alone."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from webhooks import health_hours, stats
from webhooks.models import Delivery, DeliveryAttempt

from .factories import DeliveryFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db

AUTOMATIC, MANUAL = DeliveryAttempt.Trigger.AUTOMATIC, DeliveryAttempt.Trigger.MANUAL


def tried(webhook, *attempts, status=Delivery.Status.SUCCEEDED, next_attempt_at=None):
    """A delivery to ``webhook`` with ``attempts`` ((time, succeeded[, trigger]), in order),
    its ``last_attempt_at`` the last one's time, as the worker records them (the attempts
    counted in their hours too: ``webhooks.dispatch._record_group``)."""
    delivery = DeliveryFactory(subscription=webhook, status=status, next_attempt_at=next_attempt_at)
    made = []
    for number, (at, ok, *trigger) in enumerate(attempts, start=1):
        made.append(
            DeliveryAttempt.objects.create(
                delivery=delivery,
                number=number,
                request_url=webhook.url,
                succeeded=ok,
                response_status_code=200 if ok else 500,
                trigger=trigger[0] if trigger else AUTOMATIC,
                created_at=at,
            )
        )
    health_hours.count(made)
    Delivery.objects.filter(pk=delivery.pk).update(last_attempt_at=attempts[-1][0])
    return delivery


def window_figures(webhook, now) -> tuple[int, int, int, int]:
    figures = stats.endpoint(webhook, now)
    return (figures.attempts_24h, figures.succeeded_24h, figures.attempts_7d, figures.succeeded_7d)


def list_figures(webhook, now) -> tuple[tuple[int, int], tuple[int, int]]:
    """The 24-hour figures as the portal's and the admin's lists read them (``day_rates``,
    from the hourly rows): for the webhook alone, and on a page beside another webhook."""
    alone = stats.day_rates([webhook.pk], now).get(webhook.pk, (0, 0))
    other = SubscriptionFactory()
    tried(other, (now - timedelta(minutes=1), True))
    beside = stats.day_rates([other.pk, webhook.pk], now).get(webhook.pk, (0, 0))
    return alone, beside


def test_an_attempt_exactly_24_hours_or_7_days_old_is_in_the_window_a_microsecond_older_is_not():
    now = timezone.now()
    webhook = SubscriptionFactory()
    micro = timedelta(microseconds=1)
    tried(webhook, (now - stats.DAY, True))  # in both windows, on their edge
    tried(webhook, (now - stats.DAY - micro, False))  # the week's only
    tried(webhook, (now - stats.WEEK, True))  # on the week's edge
    tried(webhook, (now - stats.WEEK - micro, True))  # outside both
    # A delivery tried on both sides of the day's edge: only its second attempt is today's.
    tried(webhook, (now - stats.DAY - micro, False), (now - stats.DAY, True))

    assert window_figures(webhook, now) == (2, 2, 5, 3)
    assert list_figures(webhook, now) == ((2, 2), (2, 2))
    # The last success within 7 days: the newest succeeded attempt, at the day's edge.
    assert stats.endpoint(webhook, now).last_success_at == now - stats.DAY


def test_manual_and_automatic_attempts_count_alike():
    """A resend of a delivery that had succeeded is one more attempt, and one more success:
    the rate is of what the receiver did, whoever asked for the request."""
    now = timezone.now()
    webhook = SubscriptionFactory()
    hour = timedelta(hours=1)
    tried(webhook, (now - 3 * hour, False), (now - 2 * hour, True), (now - hour, True, MANUAL))
    tried(webhook, (now - 2 * stats.DAY, False, MANUAL))

    assert window_figures(webhook, now) == (3, 2, 4, 2)
    assert list_figures(webhook, now) == ((3, 2), (3, 2))


def test_a_deleted_delivery_no_longer_counts_nor_another_webhooks_attempts():
    now = timezone.now()
    webhook, other = SubscriptionFactory(), SubscriptionFactory()
    kept = tried(webhook, (now - timedelta(hours=1), True))
    deleted = tried(webhook, (now - timedelta(hours=2), False), (now - timedelta(hours=1), False))
    tried(other, (now - timedelta(hours=1), False))
    assert window_figures(webhook, now) == (3, 1, 3, 1)

    deleted.delete()

    assert window_figures(webhook, now) == (1, 1, 1, 1)
    assert list_figures(webhook, now) == ((1, 1), (1, 1))
    assert kept.attempts.count() == 1 and window_figures(other, now) == (1, 0, 1, 0)


def test_the_figures_are_those_of_a_count_of_every_attempt_by_hand():
    """Two hundred deliveries tried one to three times over nine days (a third of the
    attempts on or next to an edge), manual resends among them: each figure equals the
    count of the rows themselves."""
    rng = random.Random(20)
    now = timezone.now()
    webhook, other = SubscriptionFactory(), SubscriptionFactory()
    edges = [now - stats.DAY, now - stats.WEEK]
    for n in range(200):
        times = sorted(
            rng.choice(edges) + timedelta(microseconds=rng.choice((-1, 0, 1)))
            if rng.random() < 0.33
            else now - timedelta(seconds=rng.uniform(0, 9 * 24 * 3600))
            for _ in range(rng.choice((1, 1, 2, 3)))
        )
        attempts = [(at, rng.random() < 0.7, rng.choice((AUTOMATIC, MANUAL))) for at in times]
        tried(webhook if n % 5 else other, *attempts)

    for subscription in (webhook, other):
        rows = DeliveryAttempt.objects.filter(delivery__subscription=subscription)
        day = [a for a in rows if a.created_at >= now - stats.DAY]
        week = [a for a in rows if a.created_at >= now - stats.WEEK]
        expected = (
            len(day),
            sum(a.succeeded for a in day),
            len(week),
            sum(a.succeeded for a in week),
        )
        assert window_figures(subscription, now) == expected
        assert list_figures(subscription, now) == (expected[:2], expected[:2])
        assert stats.endpoint(subscription, now).last_success_at == max(
            (a.created_at for a in week if a.succeeded), default=None
        )


def test_the_backlog_counts_every_pending_delivery_of_the_webhook_with_or_without_a_time():
    now = timezone.now()
    webhook, other = SubscriptionFactory(), SubscriptionFactory()
    for minutes in (-5, 0, 30):  # due 5 minutes ago, due now, a retry in 30 minutes
        DeliveryFactory(subscription=webhook, next_attempt_at=now + timedelta(minutes=minutes))
    # A test event waits for its one manual attempt, with no time of its own.
    DeliveryFactory(subscription=webhook, next_attempt_at=None)
    DeliveryFactory(subscription=webhook, status=Delivery.Status.SUCCEEDED, next_attempt_at=None)
    DeliveryFactory(subscription=webhook, status=Delivery.Status.FAILED, next_attempt_at=None)
    DeliveryFactory(subscription=other, next_attempt_at=now - timedelta(minutes=5))

    figures = stats.endpoint(webhook, now)

    assert (figures.pending, figures.due) == (4, 2)


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's query planner")
def test_on_sqlite_the_counts_are_read_from_indexes_alone():
    """Without ``sqlite_stat1`` (Django never runs ANALYZE), SQLite must still answer the
    window counts and the backlog from covering indexes: the attempt rows hold headers
    and bodies, and a busy webhook's week is 100,000 of them (280 ms → 110 ms)."""
    now = timezone.now()
    webhook = SubscriptionFactory()
    tried(webhook, (now - timedelta(hours=1), True))
    DeliveryFactory(subscription=webhook, next_attempt_at=now)

    executed = []  # (sql, params) as run: SQLite plans a partial index with the bound value

    def record(execute, sql, params, many, context):
        executed.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        stats.endpoint(webhook, now)
    plans = []
    with connection.cursor() as cursor:
        for sql, params in executed:
            cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
            plans.append((sql, " | ".join(row[3] for row in cursor.fetchall())))
    [hours] = [plan for sql, plan in plans if '"week_ok"' in sql]
    edges = [plan for sql, plan in plans if 'AS "n"' in sql]
    [backlog] = [plan for sql, plan in plans if '"pending"' in sql]

    # The whole hours from the webhook's hour rows (their unique index), the windows'
    # partial first hours from the window's deliveries and the attempts' covering index.
    assert "webhooks_healthhour USING INDEX" in hours and "(subscription_id=? AND hour>?)" in hours
    assert len(edges) == 2
    for edge in edges:
        assert "COVERING INDEX webhooks_delivery_attempted (subscription_id=? AND last_at" in edge
        assert "COVERING INDEX webhooks_attempt_window" in edge
    assert "COVERING INDEX webhooks_delivery_pending" in backlog


def test_attempts_have_one_index_starting_with_their_delivery_besides_the_unique_number():
    """``webhooks_attempt_window`` replaced the plain index on ``delivery``: recording an
    attempt writes no more index entries than before the figures' index existed."""
    table = DeliveryAttempt._meta.db_table
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    plain = [
        name
        for name, info in constraints.items()
        if info["index"] and not info["unique"] and info["columns"][:1] == ["delivery_id"]
    ]
    assert plain == ["webhooks_attempt_window"]
    assert constraints["webhooks_attempt_number"]["columns"] == ["delivery_id", "number"]


def attempt_indexes() -> dict[str, list[str]]:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, "webhooks_deliveryattempt")
    return {
        name: info["columns"]
        for name, info in constraints.items()
        if info["index"] and not info["unique"] and not info["primary_key"]
    }


@pytest.mark.django_db(transaction=True)
def test_the_migration_swaps_the_delivery_index_for_the_window_one_and_back():
    from django.db.migrations.executor import MigrationExecutor

    def migrate(targets):
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(targets or executor.loader.graph.leaf_nodes())

    try:
        migrate([("webhooks", "0011_subscription_rate_limit")])
        before = attempt_indexes()
        assert ["delivery_id"] in before.values()
        assert "webhooks_attempt_window" not in before
        migrate([("webhooks", "0012_stats_covering_indexes")])
        after = attempt_indexes()
        assert after["webhooks_attempt_window"] == ["delivery_id", "created_at", "succeeded"]
        assert ["delivery_id"] not in after.values()
    finally:
        migrate(None)  # every app at its latest again, for the tests after this one


def test_the_latency_sample_is_read_from_a_start_fetched_first():
    """The time of the webhook's 1,000th latest delivery is looked up on its own and sent
    as a value: as a subquery, PostgreSQL planned the sample's query for the busy
    webhook's whole day of deliveries, with parallel workers (190–640 ms at 10M)."""
    webhook = SubscriptionFactory()
    now = timezone.now()
    tried(webhook, (now - timedelta(minutes=5), True))
    executed = []

    def record(execute, sql, params, many, context):
        executed.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        figures = stats.endpoint(webhook, now)

    assert figures.latency_sample == 1
    column = ".".join(map(connection.ops.quote_name, ("webhooks_deliveryattempt", "duration_ms")))
    [sample] = [sql for sql in executed if sql.startswith(f"SELECT {column}")]
    assert sample.upper().count("SELECT") == 1, sample
