"""The fan-out's cost follows the event's tenant, not the platform (issue 23's scale
ladder: ``python -m bench.scale_ladder``).

An event is owed to the webhooks of its scope that want its type; what other tenants'
webhooks want must not be read for it. At 100,000 webhooks, reading every webhook's
choice of the type (3,500 rows) was 11 ms of a one-webhook fan-out that takes 1 ms on
empty tables.
"""

from unittest import mock

import pytest
from django.db import connection, transaction

from tests.factories import SubscriptionFactory
from webhooks import outbox
from webhooks.models import Delivery, EventType, Subscription

TYPE = "article.shared"

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_plan_gate")]


def crowd(scope: str, n: int) -> None:
    """``n`` webhooks of another tenant, each choosing ``TYPE`` (and another type)."""
    webhooks = Subscription.objects.bulk_create(
        Subscription(scope=scope, url=f"https://example.com/{i}") for i in range(n)
    )
    types = list(EventType.objects.filter(name__in=[TYPE, "article.created"]))
    chosen = Subscription.event_types.through
    chosen.objects.bulk_create(
        chosen(subscription_id=webhook.pk, eventtype_id=t.pk) for webhook in webhooks for t in types
    )


def fan_out(scope: str) -> tuple[set, list]:
    """Fan out one ``TYPE`` event of ``scope``: the webhooks owed it, and the statements."""
    # Recorded without its on-commit task (in the tests' sync mode the task would fan it
    # out at once): the fan-out below is the workers'.
    with mock.patch("webhooks.outbox._after_commit"), transaction.atomic():
        event = outbox.record_event(TYPE, {"id": 1}, scope=scope)
    executed = []

    def record(execute, sql, params, many, context):
        executed.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        outbox.fan_out(event.pk)
    owed = set(Delivery.objects.filter(event=event).values_list("subscription_id", flat=True))
    return owed, executed


def test_an_event_is_owed_to_exactly_the_tenants_webhooks_that_want_its_type():
    wants = SubscriptionFactory(scope="acme", events=[TYPE])
    wants_several = SubscriptionFactory(scope="acme", events=["article.created", TYPE])
    everything = SubscriptionFactory(scope="acme", all_events=True)
    SubscriptionFactory(scope="acme", events=["article.created"])  # another type
    SubscriptionFactory(scope="acme", events=[TYPE], is_active=False)
    SubscriptionFactory(scope="acme")  # chose nothing
    crowd("other", 3)
    SubscriptionFactory(scope="other", all_events=True)

    owed, _ = fan_out("acme")

    assert owed == {wants.pk, wants_several.pk, everything.pk}


@pytest.mark.skipif(
    connection.vendor == "mysql", reason="the plan is asserted on SQLite and PostgreSQL"
)
def test_the_fan_out_reads_only_the_choices_of_the_events_tenant():
    mine = SubscriptionFactory(scope="acme", events=[TYPE])
    # A platform's worth: on a few hundred rows PostgreSQL rightly hashes them all.
    crowd("big", 2000)
    with connection.cursor() as cursor:  # as autovacuum would: the planner sees the crowd
        cursor.execute("ANALYZE")

    owed, executed = fan_out("acme")
    assert owed == {mine.pk}

    table = Subscription._meta.db_table
    [(sql, params)] = [(s, p) for s, p in executed if f"FROM {quoted(table)} s" in s]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("EXPLAIN " + sql, params)
            plan = " | ".join(row[0] for row in cursor.fetchall())
            # Each webhook of the tenant is looked up in its own choices; nothing hashes
            # (so reads) every webhook's choice of the type.
            assert "hashed SubPlan" not in plan, plan
            assert "Index Cond: (subscription_id = s.id)" in plan, plan
        else:
            cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
            plan = " | ".join(str(row[-1]) for row in cursor.fetchall())
            assert "LIST SUBQUERY" not in plan, plan
            assert "CORRELATED" in plan, plan


def quoted(name: str) -> str:
    return connection.ops.quote_name(name)
