"""A webhook's figures over 24 hours and 7 days (webhooks.stats): windows that start on the
hour (the start of the hour 24 hours, or 7 days, ago), summed from the hourly rows alone,
never from a count of attempts; exactly the attempts of the window, at its edges too,
whatever triggered them, and nothing of a deleted delivery; the same numbers in the
admin's list, the portal's list and the webhook's page. On SQLite, each count is answered
from an index alone."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
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


def at_minute_40():
    """A time 40 minutes past an hour (the last one that has passed): the windows then
    start 24 hours 40 minutes (7 days 40 minutes) before it."""
    return health_hours.hour_of(timezone.now()) - timedelta(minutes=20)


def in_windows(attempts, now) -> tuple[int, int, int, int]:
    """(attempts, succeeded) since each window's start, counted by hand."""
    day = [a for a in attempts if a.created_at >= stats.window_start(now, stats.DAY)]
    week = [a for a in attempts if a.created_at >= stats.window_start(now, stats.WEEK)]
    return (len(day), sum(a.succeeded for a in day), len(week), sum(a.succeeded for a in week))


def test_a_window_starts_on_the_hour_24_hours_or_7_days_ago():
    """At 10:40, "24 hours" count from 10:00 yesterday: an attempt 24 h 30 min old is in,
    one a microsecond before 10:00 is not; "7 days" from 10:00 seven days ago, alike."""
    now = at_minute_40()
    day_from, week_from = (
        now - stats.DAY - timedelta(minutes=40),
        now - stats.WEEK - timedelta(minutes=40),
    )
    micro = timedelta(microseconds=1)
    webhook = SubscriptionFactory()
    tried(webhook, (now - stats.DAY - timedelta(minutes=30), True))  # in both windows
    tried(webhook, (day_from, True))  # in both, on the day's first instant
    tried(webhook, (day_from - micro, False))  # the week's only
    tried(webhook, (week_from + timedelta(minutes=10), True))  # 7 days 30 minutes old
    tried(webhook, (week_from - micro, True))  # outside both
    # A delivery tried on both sides of the day's start: only its second attempt is in it.
    tried(webhook, (day_from - micro, False), (day_from, True))

    figures = stats.endpoint(webhook, now)

    assert (figures.since_24h, figures.since_7d) == (day_from, week_from)
    assert window_figures(webhook, now) == (3, 3, 6, 4)
    assert list_figures(webhook, now) == ((3, 3), (3, 3))
    # The last success: the newest succeeded attempt, 24 h 30 min ago.
    assert figures.last_success_at == now - stats.DAY - timedelta(minutes=30)


def test_the_windows_and_the_lists_rate_count_no_attempt_rows():
    """The figures are the hourly rows: no statement counts attempts, however busy the
    webhook (at 10M attempts, each window's partial first hour cost 65–193 ms). Of the
    page's statements, three read attempts: the latency sample, the last attempt, and
    the last success (the newest hour that has one)."""
    now = at_minute_40()
    webhook = SubscriptionFactory()
    for age in (timedelta(minutes=5), stats.DAY + timedelta(minutes=30), stats.WEEK):
        tried(webhook, (now - age, False), (now - age + timedelta(seconds=1), True))

    with CaptureQueriesContext(connection) as page:
        figures = stats.endpoint(webhook, now)
    with CaptureQueriesContext(connection) as listed:
        rates = stats.day_rates([webhook.pk], now)

    assert window_figures(webhook, now) == (4, 2, 6, 3) and rates == {webhook.pk: (4, 2)}
    on_attempts = [q["sql"] for q in page if "webhooks_deliveryattempt" in q["sql"]]
    assert len(on_attempts) == 3, on_attempts
    assert not [sql for sql in on_attempts if "COUNT(" in sql.upper()], on_attempts
    assert figures.last_success_at == now - timedelta(minutes=5) + timedelta(seconds=1)
    assert [q["sql"] for q in listed if "webhooks_deliveryattempt" in q["sql"]] == []
    assert len(listed) == 1


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
    edges = [stats.window_start(now, stats.DAY), stats.window_start(now, stats.WEEK)]
    for n in range(200):
        times = sorted(
            rng.choice(edges) + timedelta(microseconds=rng.choice((-1, 0, 1)))
            if rng.random() < 0.33
            else now - timedelta(seconds=rng.uniform(0, 9 * 24 * 3600))
            for _ in range(rng.choice((1, 1, 2, 3)))
        )
        attempts = [(at, rng.random() < 0.7, rng.choice((AUTOMATIC, MANUAL))) for at in times]
        tried(webhook if n % 5 else other, *attempts)

    week_from = stats.window_start(now, stats.WEEK)
    for subscription in (webhook, other):
        rows = list(DeliveryAttempt.objects.filter(delivery__subscription=subscription))
        expected = in_windows(rows, now)
        assert window_figures(subscription, now) == expected
        assert list_figures(subscription, now) == (expected[:2], expected[:2])
        assert stats.endpoint(subscription, now).last_success_at == max(
            (a.created_at for a in rows if a.succeeded and a.created_at >= week_from),
            default=None,
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
    [backlog] = [plan for sql, plan in plans if '"pending"' in sql]

    # The windows from the webhook's hour rows (their unique index) alone.
    assert "webhooks_healthhour USING INDEX" in hours and "(subscription_id=? AND hour>?)" in hours
    assert not [sql for sql, plan in plans if 'AS "n"' in sql]  # no count of attempts
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
    from tests.test_migration_encrypts import migrate

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
        migrate()  # every app at its latest again, for the tests after this one


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
