"""The delivery list and a webhook's page cost the same number of queries at any size."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from example_project.organisations.models import Organisation
from tests.admin.helpers import DELIVERIES_URL, change_url, seed
from tests.factories import SubscriptionFactory
from webhooks.admin import health
from webhooks.models import Delivery

pytestmark = pytest.mark.django_db

# Each includes the SAVEPOINT and RELEASE of the request's transaction (ATOMIC_REQUESTS).
MAX_LIST_QUERIES = 10
# A webhook page: +7 for its figures (webhooks.stats.endpoint: its hourly rows, each
# window's partial first hour, its last success, backlog, latency and last attempt), +1 for
# the types it can be sent an example of; +1 for the plan gate (WEBHOOKS_PLAN_GATE) of a
# customer's staff.
MAX_PAGE_QUERIES = 22
WEBHOOKS_URL = "/admin/webhooks/subscription/"


def grow(sub, n):
    """``n`` more deliveries, spread over the last week, with every status."""
    now = timezone.now()
    per = max(1, n // 4)
    seed(sub, per, created_at=now - timedelta(hours=1), attempts=True)
    seed(
        sub, per, status=Delivery.Status.FAILED, created_at=now - timedelta(hours=5), attempts=True
    )
    seed(
        sub, per, status=Delivery.Status.PENDING, created_at=now - timedelta(days=2), attempts=True
    )
    seed(sub, n - 3 * per, created_at=now - timedelta(days=6), attempts=True)


def queries(client, url, assert_max, limit) -> int:
    """How many queries a warm GET of ``url`` makes, asserting at most ``limit``."""
    client.get(url)  # warm the per-process caches (content types, …)
    with assert_max(limit) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


@pytest.mark.parametrize(
    "url",
    [
        DELIVERIES_URL,
        DELIVERIES_URL + "?state=failed",
        DELIVERIES_URL + "?response=5xx",
        DELIVERIES_URL + "?q=127.0.0.1",
    ],
)
def test_the_delivery_list_makes_a_constant_number_of_queries(
    url, admin_client, django_assert_max_num_queries
):
    subs = [SubscriptionFactory(all_events=True, url="http://127.0.0.1/h") for _ in range(3)]
    grow(subs[0], 8)
    small = queries(admin_client, url, django_assert_max_num_queries, MAX_LIST_QUERIES)
    for sub in subs:
        grow(sub, 120)  # more rows than a page holds, over several webhooks
    large = queries(admin_client, url, django_assert_max_num_queries, MAX_LIST_QUERIES)
    assert large == small


def test_a_webhooks_page_makes_a_constant_number_of_queries(
    admin_client, django_assert_max_num_queries
):
    sub = SubscriptionFactory(events=["article.created", "article.updated"])
    grow(sub, 4)
    small = queries(admin_client, change_url(sub), django_assert_max_num_queries, MAX_PAGE_QUERIES)
    grow(sub, 400)
    large = queries(admin_client, change_url(sub), django_assert_max_num_queries, MAX_PAGE_QUERIES)
    assert large == small


def test_the_webhook_list_makes_a_constant_number_of_queries(
    admin_client, django_assert_max_num_queries
):
    SubscriptionFactory(events=["article.created"])
    small = queries(admin_client, WEBHOOKS_URL, django_assert_max_num_queries, MAX_LIST_QUERIES)
    for _ in range(30):
        SubscriptionFactory(events=["article.created", "article.updated"])
    large = queries(admin_client, WEBHOOKS_URL, django_assert_max_num_queries, MAX_LIST_QUERIES)
    assert large == small


def test_tenant_staff_pages_make_a_constant_number_of_queries(
    acme_client, acme, django_assert_max_num_queries
):
    sub = SubscriptionFactory(scope=acme.scope, events=["article.created"])
    grow(sub, 4)
    pages = [DELIVERIES_URL, change_url(sub)]
    small = [
        queries(acme_client, url, django_assert_max_num_queries, MAX_PAGE_QUERIES) for url in pages
    ]
    grow(sub, 200)
    large = [
        queries(acme_client, url, django_assert_max_num_queries, MAX_PAGE_QUERIES) for url in pages
    ]
    assert large == small


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's query planner")
def test_the_webhook_pages_chart_counts_its_day_from_an_index_alone():
    """The chart of a webhook's page (its deliveries of 24 hours, per hour and state) reads
    ``webhooks_delivery_health`` only, not the delivery rows: a busy webhook's day is
    36,000 of them at 10M attempts (190 ms on PostgreSQL, 12 ms from the index)."""
    sub = SubscriptionFactory()
    seed(sub, 3, attempts=True)
    executed = []

    def record(execute, sql, params, many, context):
        executed.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        health.health(sub)
    [(sql, params)] = [(sql, params) for sql, params in executed if '"h0"' in sql]
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
        plan = " | ".join(row[3] for row in cursor.fetchall())
    assert "COVERING INDEX webhooks_delivery_health" in plan


def test_the_superusers_list_of_many_customers_makes_a_constant_number_of_queries(
    admin_client, django_assert_max_num_queries
):
    """Per page, not per webhook nor per customer: the plan gate is asked once for the
    page's customers (the example's gate answers many at once), the last 24 hours of the
    page's webhooks are read in two grouped queries."""
    now = timezone.now()

    def customers(names, pro=True):
        for name in names:
            organisation = Organisation.objects.create(name=name, slug=name, is_pro=pro)
            webhook = SubscriptionFactory(scope=organisation.scope, description=f"{name} hook")
            seed(webhook, 1, created_at=now - timedelta(hours=3), attempts=True)
            seed(webhook, 1, status=Delivery.Status.FAILED, status_code=500, attempts=True)

    customers(["pro-1"])
    customers(["free-1"], pro=False)
    small = queries(admin_client, WEBHOOKS_URL, django_assert_max_num_queries, MAX_LIST_QUERIES)
    customers([f"pro-{i}" for i in range(2, 12)])
    customers([f"free-{i}" for i in range(2, 12)], pro=False)
    page = admin_client.get(WEBHOOKS_URL).content.decode()
    large = queries(admin_client, WEBHOOKS_URL, django_assert_max_num_queries, MAX_LIST_QUERIES)

    assert large == small
    rows = page.split("<tr")[1:]
    for i in range(1, 12):
        for name, refused in ((f"pro-{i}", False), (f"free-{i}", True)):
            [row] = [row for row in rows if f"{name} hook<" in row]
            assert ("plan does not include webhooks" in row) is refused, name
            assert "1 of 2 attempts succeeded" in row, name
