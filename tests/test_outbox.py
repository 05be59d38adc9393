"""send_event, the outbox's fan-out, and the sweeper's repairs."""

import uuid
from datetime import timedelta
from unittest import mock

import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

import webhooks
from tests.factories import SubscriptionFactory
from tests.testapp.models import Article
from webhooks import outbox, sweeper
from webhooks.conf import conf
from webhooks.exceptions import InvalidPayload, UnknownEventType
from webhooks.models import Delivery, Event, EventType

pytestmark = pytest.mark.django_db


@pytest.mark.usefixtures("no_plan_gate")
def test_send_event_records_and_delivers(receiver, subscribe, commit):
    subscribe(receiver, ["article.shared"], scope="acme")
    with commit():
        event = webhooks.send_event("article.shared", {"email": "a@b.c"}, scope="acme")
    assert event.scope == "acme"
    [request] = receiver.requests
    assert request.json()["data"] == {"email": "a@b.c"}
    assert request.json()["id"] == str(event.id)


def test_send_event_unknown_type_names_the_valid_ones():
    with pytest.raises(UnknownEventType) as info:
        webhooks.send_event("article.sharde", {})
    assert "article.shared" in str(info.value) and "article.created" in str(info.value)
    assert Event.objects.count() == 0


def test_send_event_with_unserialisable_data_writes_nothing():
    with pytest.raises(InvalidPayload, match="not JSON-serialisable"):
        webhooks.send_event("article.shared", {"when": object()})
    assert Event.objects.count() == 0


def test_dates_decimals_and_uuids_are_serialised():
    event = webhooks.send_event("article.shared", {"at": timezone.now(), "id": uuid.uuid4()})
    assert isinstance(event.data["at"], str) and isinstance(event.data["id"], str)


def test_event_types_are_synced_from_the_registry():
    names = set(EventType.objects.values_list("name", flat=True))
    assert {"article.created", "article.shared", "webhook.test"} <= names
    EventType.objects.filter(name="article.created").update(description="stale", is_active=False)
    call_command("webhooks_sync_event_types", stdout=mock.MagicMock())
    row = EventType.objects.get(name="article.created")
    assert row.description == "An article was created."
    assert row.is_active is False  # the admin's choice survives a sync


def test_inactive_event_type_is_recorded_but_delivered_to_nobody(receiver, subscribe, commit):
    subscribe(receiver, all_events=True)
    EventType.objects.filter(name="article.created").update(is_active=False)
    with commit():
        Article.objects.create(title="x")
    assert Event.objects.filter(type="article.created").count() == 1
    assert receiver.types() == []


def test_host_cost_is_one_insert_whatever_the_number_of_subscriptions(django_assert_num_queries):
    for _ in range(25):
        SubscriptionFactory(all_events=True)
    with django_assert_num_queries(1):
        Article.objects.bulk_create([Article(title="x")])  # baseline: bulk_create sends no signal
    with django_assert_num_queries(2):
        Article.objects.create(title="x")  # the row + one Event


def test_fan_out_is_idempotent(receiver, subscribe):
    subscribe(receiver, all_events=True)
    event = webhooks.send_event("article.shared", {})
    first = outbox.fan_out(event.pk)
    assert len(first) == 1
    assert outbox.fan_out(event.pk) == []
    assert Delivery.objects.count() == 1


def test_sweeper_recovers_an_event_whose_enqueue_was_lost(receiver, subscribe, commit, run_due):
    subscribe(receiver, ["article.created"])
    with mock.patch("django_q.tasks.async_task", side_effect=ConnectionError("broker down")):
        with commit():
            Article.objects.create(title="lost")  # the host's save still succeeds
    assert receiver.requests == [] and Event.objects.get().fanned_out_at is None
    run_due(timedelta(seconds=5))  # within the grace period: left to the normal path
    assert receiver.requests == []
    run_due(timedelta(seconds=60))
    assert receiver.types() == ["article.created"]


def test_sweeper_recovers_a_delivery_whose_worker_died(receiver, subscribe, run_due):
    subscribe(receiver, all_events=True)
    event = webhooks.send_event("article.shared", {})
    ids = outbox.fan_out(event.pk)
    token, claimed = outbox.claim(ids)  # a worker claimed it ... and was killed
    assert claimed == ids
    run_due(timedelta(seconds=conf.LEASE_SECONDS - 5))
    assert receiver.requests == []  # the lease still holds
    run_due(timedelta(minutes=10))
    assert len(receiver.requests) == 1
    assert Delivery.objects.get().status == Delivery.Status.SUCCEEDED


def test_a_claim_is_exclusive_until_its_lease_expires(receiver, subscribe):
    subscribe(receiver, all_events=True)
    event = webhooks.send_event("article.shared", {})
    ids = outbox.fan_out(event.pk)
    first_token, first = outbox.claim(ids)
    second_token, second = outbox.claim(ids)
    assert first == ids and second == []
    later = timezone.now() + timedelta(seconds=conf.LEASE_SECONDS + 1)
    assert outbox.claim(ids, now=later)[1] == ids  # the first worker is presumed dead
    assert outbox.claim_due(10, now=later) == (mock.ANY, [])


def test_claiming_due_work_when_none_is_due_is_one_read_and_takes_no_lock(subscribe, receiver):
    """Every fan-out task in a worker then helps with due deliveries; nearly always none is
    due, and finding that out must not cost a transaction (on SQLite, the write lock)."""
    from django.db import connection

    subscribe(receiver, all_events=True)
    event = webhooks.send_event("article.shared", {})
    outbox.claim(outbox.fan_out(event.pk))  # pending, due, but leased: not claimable
    statements = []

    def count(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        assert outbox.claim_due(10) == (mock.ANY, [])
    [read] = statements  # not even a savepoint: the test's transaction would show one
    assert read.lstrip().upper().startswith("SELECT") and "FOR UPDATE" not in read.upper()
    later = timezone.now() + timedelta(seconds=conf.LEASE_SECONDS + 1)
    assert len(outbox.claim_due(10, now=later)[1]) == 1  # its lease expired: claimed


def test_a_stale_or_doubled_task_sends_nothing(receiver, subscribe, commit):
    """The ORM broker may re-run a task; the lease token makes the rerun harmless."""
    from webhooks import dispatch

    subscribe(receiver, all_events=True)
    event = webhooks.send_event("article.shared", {})
    ids = outbox.fan_out(event.pk)
    token, claimed = outbox.claim(ids)
    with commit():
        dispatch.send_claimed(claimed, token)
        dispatch.send_claimed(claimed, token)  # the same task again
        dispatch.send_claimed(claimed, uuid.uuid4())  # a task with someone else's token
    assert len(receiver.requests) == 1


def test_broker_outage_during_sweep_gives_claims_back(receiver, subscribe, run_due):
    subscribe(receiver, all_events=True)
    event = webhooks.send_event("article.shared", {})
    outbox.fan_out(event.pk)
    with mock.patch("django_q.tasks.async_task", side_effect=ConnectionError("down")):
        sweeper.sweep_once(now=timezone.now() + timedelta(seconds=1))
    delivery = Delivery.objects.get()
    assert delivery.lease_token is None  # not stuck behind a lease
    run_due(timedelta(seconds=1))
    assert len(receiver.requests) == 1


def test_sweep_schedule_exists_after_migrate_and_is_not_duplicated():
    from django_q.models import Schedule

    sweeper.ensure_schedule()
    sweeper.ensure_schedule()
    [schedule] = Schedule.objects.filter(name=sweeper.SCHEDULE_NAME)
    assert schedule.func == "webhooks.tasks.sweep" and schedule.repeats == -1


def test_sweep_command_runs(receiver, subscribe, capsys):
    call_command("webhooks_sweep")
    assert "deliveries enqueued" in capsys.readouterr().out


def test_rollback_inside_a_larger_transaction_discards_only_its_events(receiver, subscribe, commit):
    subscribe(receiver, ["article.created"])
    with commit(), transaction.atomic():
        Article.objects.create(title="kept")
        try:
            with transaction.atomic():
                Article.objects.create(title="rolled back")
                raise RuntimeError
        except RuntimeError:
            pass
    assert [r.json()["data"]["title"] for r in receiver.requests] == ["kept"]


def test_a_scheduled_sweep_ends_before_the_next_one_is_due(settings):
    """django-q2 may fire the schedule early (it did at start-up): sweeps must not overlap."""
    import time

    from django_q.models import Schedule

    from webhooks import tasks

    settings.WEBHOOKS_SWEEP_DURATION = 60
    sweeper.ensure_schedule()
    # The scheduler has already set the next run: it is due now.
    Schedule.objects.filter(name=sweeper.SCHEDULE_NAME).update(next_run=timezone.now())
    started = time.monotonic()
    tasks.sweep()
    assert time.monotonic() - started < 30  # one pass, not the 60 s a lone sweep would poll
