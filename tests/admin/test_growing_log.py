"""The delivery log's pages cost the same however large the log and the platform grow
(issue 23): counted only up to a bound, a bounded webhook filter, failures found through
their own index, a search by URL that names the webhooks it found."""

import re

import pytest
from django.db import connection

from tests.admin.helpers import DELIVERIES_URL, seed
from tests.factories import SubscriptionFactory
from webhooks.admin import deliveries as delivery_admin
from webhooks.admin import paging
from webhooks.models import Delivery, Subscription

#: The delivery log's id column, as this database quotes it.
DELIVERY_ID = ".".join(map(connection.ops.quote_name, ("webhooks_delivery", "id")))

pytestmark = pytest.mark.django_db


def statements(client, url) -> tuple[object, list[str]]:
    """The response to a GET of ``url`` and the SQL it ran, as run."""
    executed = []

    def record(execute, sql, params, many, context):
        executed.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        response = client.get(url)
    return response, executed


def plan_of(sql: str, params) -> str:
    """The plan SQLite or PostgreSQL chooses for a statement the page ran, on one line."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # A tiny table is read whole on PostgreSQL; the index is there for big ones.
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("EXPLAIN " + sql, params)
            return " | ".join(row[0] for row in cursor.fetchall())
        cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
        return " | ".join(str(row[-1]) for row in cursor.fetchall())


def test_the_log_counts_no_further_than_its_bound_and_says_there_are_more(
    admin_client, monkeypatch
):
    monkeypatch.setattr(paging.BoundedPaginator, "bound", 5)
    seed(SubscriptionFactory(all_events=True), 8)

    response, executed = statements(admin_client, DELIVERIES_URL)

    assert response.status_code == 200
    assert "More than 5 deliveries" in response.content.decode()
    counts = [sql for sql, _ in executed if "COUNT(" in sql.upper()]
    assert counts, "the page still counts (up to the bound)"
    # Every count is over a LIMITed subquery: never a count(*) over the whole log.
    assert all(re.search(r"LIMIT\s+(6|%s)", sql) for sql in counts), counts


def test_a_log_within_the_bound_is_counted_exactly(admin_client):
    seed(SubscriptionFactory(all_events=True), 3)

    response = admin_client.get(DELIVERIES_URL)

    assert "3 deliveries" in response.content.decode()
    assert "More than" not in response.content.decode()


def test_the_webhook_filter_lists_a_bounded_number_and_keeps_the_chosen_one(
    admin_client, monkeypatch
):
    monkeypatch.setattr(delivery_admin, "WEBHOOKS_LISTED", 3)
    webhooks = [SubscriptionFactory(all_events=True, description=f"Hook {i}") for i in range(6)]
    # In the database's order of ids (MariaDB's UUID type sorts them its own way).
    by_id = list(Subscription.objects.order_by("pk"))
    listed, chosen = by_id[:3], by_id[-1]
    seed(chosen, 2)

    page = admin_client.get(DELIVERIES_URL).content.decode()
    shown = {w.description for w in webhooks if f"webhook={w.pk}" in page}
    assert shown == {w.description for w in listed}

    page = admin_client.get(f"{DELIVERIES_URL}?webhook={chosen.pk}").content.decode()
    assert f"webhook={chosen.pk}" in page  # still in the filter, as the one selected
    assert "2 deliveries" in page


@pytest.mark.parametrize("named_at_most", [1000, 1])
def test_a_search_by_url_finds_the_deliveries_of_every_matching_webhook(
    admin_client, monkeypatch, named_at_most
):
    """By the webhooks' ids (the database then knows how many match: joined on ``url
    LIKE``, it guesses a handful and reads and sorts every delivery of the matching
    webhooks), or past the bound by a subquery (a statement of bounded size)."""
    monkeypatch.setattr(delivery_admin, "SEARCHED_WEBHOOKS", named_at_most)
    found = [SubscriptionFactory(all_events=True, url=f"https://shop.example/h{i}") for i in (1, 2)]
    other = SubscriptionFactory(all_events=True, url="https://elsewhere.example/h")
    for webhook in [*found, other]:
        seed(webhook, 2)

    response, executed = statements(admin_client, DELIVERIES_URL + "?q=SHOP.example")

    assert response.status_code == 200
    assert "4 deliveries" in response.content.decode()
    if named_at_most > len(found):
        listing = [sql for sql, _ in executed if sql.startswith(f"SELECT {DELIVERY_ID}")]
        assert listing and all("url" not in sql.split(" FROM ", 1)[1] for sql in listing)


@pytest.mark.skipif(
    connection.vendor == "mysql", reason="the plan is asserted on SQLite and PostgreSQL"
)
def test_the_failed_filter_reads_the_failures_index(admin_client):
    webhook = SubscriptionFactory(all_events=True)
    seed(webhook, 20)
    seed(webhook, 3, status=Delivery.Status.FAILED, status_code=500)

    response, executed = statements(admin_client, DELIVERIES_URL + "?state=failed")
    assert "3 deliveries" in response.content.decode()

    [(sql, params)] = [
        (sql, params)
        for sql, params in executed
        if sql.startswith(f"SELECT {DELIVERY_ID}") and "ORDER BY" in sql
    ]
    plan = plan_of(sql, params)
    assert "webhooks_delivery_failed" in plan, plan


@pytest.mark.skipif(
    connection.vendor == "mysql", reason="the plan is asserted on SQLite and PostgreSQL"
)
def test_the_webhook_list_reads_its_order_from_an_index(admin_client):
    """Newest first through ``webhooks_subscription_created``, not a sort of every webhook
    for each page (100,000 of them: 60–120 ms of reading and sorting on PostgreSQL)."""
    for _ in range(3):
        SubscriptionFactory()
    subscription_id = ".".join(map(connection.ops.quote_name, ("webhooks_subscription", "id")))

    response, executed = statements(admin_client, "/admin/webhooks/subscription/")
    assert response.status_code == 200

    [(sql, params)] = [
        (sql, params)
        for sql, params in executed
        if sql.startswith(f"SELECT {subscription_id}") and "ORDER BY" in sql.rsplit(")", 1)[-1]
    ]
    plan = plan_of(sql, params)
    assert "webhooks_subscription_created" in plan, plan
    assert "TEMP B-TREE FOR ORDER BY" not in plan and " Sort " not in plan, plan


def test_the_webhook_list_shows_50_a_page(admin_client):
    """As the delivery log: rendering a row (its checkbox, state and figures) is what a
    page of a platform's webhooks costs, once the queries are bounded."""
    for _ in range(51):
        SubscriptionFactory()

    response = admin_client.get("/admin/webhooks/subscription/")

    assert len(response.context["cl"].result_list) == 50
    assert "51 webhooks" in response.content.decode()
