"""Migration 0015: the trigram index on the webhooks' URLs, on PostgreSQL when ``pg_trgm``
can be created; said and skipped when it cannot; nothing on SQLite and MariaDB. And the
admin's search by URL: past a few matching webhooks, a subquery rather than their ids
where the index is there."""

import pytest
from django.db import connection

from tests.admin.helpers import DELIVERIES_URL, seed
from tests.admin.test_growing_log import DELIVERY_ID, statements
from tests.factories import SubscriptionFactory
from tests.test_migration_encrypts import migrate
from webhooks import url_search
from webhooks.admin import deliveries as delivery_admin

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the trigram index is PostgreSQL's"
)


def index_exists() -> bool:
    names = connection.introspection.get_constraints(connection.cursor(), "webhooks_subscription")
    return url_search.INDEX in names


@pytest.mark.django_db(transaction=True)
def test_the_migration_adds_the_index_on_postgresql_only_and_goes_back():
    try:
        migrate([("webhooks", "0014_health_hours")])
        assert not index_exists()

        migrate([("webhooks", "0015_webhook_list_indexes")])
        assert index_exists() is (connection.vendor == "postgresql")
        assert url_search.indexed(connection) is (connection.vendor == "postgresql")
    finally:
        migrate()  # every app at its latest again, for the tests after this one


@postgres_only
@pytest.mark.django_db
def test_without_the_right_to_create_the_extension_the_migration_says_so_and_goes_on():
    said = []
    with connection.cursor() as cursor:
        # In the test's transaction (rolled back): no extension yet, and a role that may
        # not create one in this database.
        cursor.execute(f"DROP EXTENSION IF EXISTS {url_search.EXTENSION} CASCADE")
        cursor.execute("CREATE ROLE webhooks_no_create NOLOGIN")
        cursor.execute("SET LOCAL ROLE webhooks_no_create")

    assert url_search.create(connection, "webhooks_subscription", say=said.append) is False

    [message] = said
    assert "Skipped the index webhooks_subscription_url_trgm" in message
    assert "CREATE EXTENSION pg_trgm was refused (permission denied" in message
    with connection.cursor() as cursor:  # the transaction is still usable
        cursor.execute("RESET ROLE")
        cursor.execute("SELECT count(*) FROM webhooks_subscription")
    assert not index_exists()


def test_elsewhere_the_migration_does_nothing(monkeypatch):
    said = []

    class Elsewhere:
        vendor = "sqlite"

        def cursor(self):
            raise AssertionError("no statement on SQLite or MariaDB")

    assert url_search.create(Elsewhere(), "webhooks_subscription", say=said.append) is False
    assert said == []
    assert url_search.indexed(Elsewhere()) is False


@postgres_only
@pytest.mark.django_db
def test_with_the_index_many_matching_webhooks_are_searched_by_a_subquery(
    admin_client, monkeypatch
):
    """Not thousands of ids in the statement (sent and planned: ~250 ms for 10,000)."""
    monkeypatch.setattr(delivery_admin, "SEARCHED_WEBHOOKS_INDEXED", 1)
    found = [SubscriptionFactory(all_events=True, url=f"https://Shop.example/h{i}") for i in (1, 2)]
    other = SubscriptionFactory(all_events=True, url="https://elsewhere.example/h")
    for webhook in [*found, other]:
        seed(webhook, 2)

    response, executed = statements(admin_client, DELIVERIES_URL + "?q=shop.EXAMPLE")

    assert "4 deliveries" in response.content.decode()
    listing = [(sql, params) for sql, params in executed if sql.startswith(f"SELECT {DELIVERY_ID}")]
    assert listing and all("LIKE" in sql for sql, _ in listing), listing
    named = {str(value) for _, params in listing for value in params}
    assert not named & {str(webhook.pk) for webhook in found}
