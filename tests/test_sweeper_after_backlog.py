"""After a backlog drains, the sweeper's "work ahead?" poll reads its partial indexes, not
every row drained: on PostgreSQL the statistics last gathered may still say that every
event waits (``bench.backlog`` found the poll reading a million events each second)."""

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.factories import SubscriptionFactory
from webhooks import sweeper
from webhooks.models import Delivery, Event

ROWS = 2000


def drained_backlog() -> None:
    """``ROWS`` events and deliveries: analyzed while all waited (resends asked for), then
    all fanned out and sent, as a backlog leaves them before autovacuum analyzes again."""
    now = timezone.now()
    events = Event.objects.bulk_create(
        Event(id=uuid.uuid4(), type="article.created", data={}, occurred_at=now)
        for _ in range(ROWS)
    )
    webhook = SubscriptionFactory(all_events=True)
    Delivery.objects.bulk_create(
        Delivery(
            event=e,
            subscription=webhook,
            status=Delivery.Status.SUCCEEDED,
            resend_requested_at=now,
            next_attempt_at=None,
        )
        for e in events
    )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE webhooks_event")
            cursor.execute("ANALYZE webhooks_delivery")
    Event.objects.update(fanned_out_at=now)
    Delivery.objects.update(resend_requested_at=None)


def plan(sql: str) -> str:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("EXPLAIN " + sql)
        elif connection.vendor == "sqlite":
            cursor.execute("EXPLAIN QUERY PLAN " + sql)
        else:
            cursor.execute("EXPLAIN " + sql)
        return " | ".join(" ".join(str(c) for c in row) for row in cursor.fetchall())


@pytest.mark.django_db
def test_work_ahead_after_a_drained_backlog_reads_the_indexes_not_the_tables():
    drained_backlog()
    until = timezone.now()

    with CaptureQueriesContext(connection) as captured:
        assert sweeper.work_ahead(until) is False
    waiting = [q["sql"] for q in captured.captured_queries if "fanned_out_at" in q["sql"]]
    resends = [q["sql"] for q in captured.captured_queries if "resend_requested_at" in q["sql"]]
    assert len(waiting) == len(resends) == 1

    if connection.vendor == "postgresql":
        assert "webhooks_event_pending_fanout" in plan(waiting[0]), plan(waiting[0])
        assert "webhooks_delivery_resend" in plan(resends[0]), plan(resends[0])
    elif connection.vendor == "sqlite":
        assert "USING INDEX webhooks_event_pending_fanout" in plan(waiting[0])
        assert "USING INDEX webhooks_delivery_resend" in plan(resends[0])
    # MariaDB has no partial indexes: the events are read in the order of their time.

    # And it still sees work when there is some.
    Event.objects.filter(pk=Event.objects.values("pk")[:1]).update(fanned_out_at=None)
    assert sweeper.work_ahead(until) is True
    Event.objects.update(fanned_out_at=until)
    Delivery.objects.filter(pk=Delivery.objects.values("pk")[:1]).update(resend_requested_at=until)
    assert sweeper.work_ahead(until) is True


@pytest.mark.django_db
def test_a_sweep_sends_the_events_it_finds_not_fanned_out(receiver, subscribe, commit):
    """A lost fan-out found by a sweep is sent by that sweep: a sweep whose window has
    passed polls once, and the next one may be a minute away."""
    subscribe(receiver, all_events=True)
    late = timezone.now() - timedelta(minutes=5)  # long past the fan-out grace
    Event.objects.create(type="article.created", data={"id": 1}, occurred_at=late)

    with commit():
        report = sweeper.sweep_once()

    assert report.events_fanned_out == 1
    assert report.deliveries_enqueued == 1
    assert len(receiver.requests) == 1
    assert Delivery.objects.get().status == Delivery.Status.SUCCEEDED
