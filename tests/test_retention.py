"""Retention: old finished deliveries, their attempts and their events are deleted; nothing
still owed or still recent is."""

import uuid
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings
from django.utils import timezone
from django_q.models import Schedule

from tests.factories import EventFactory, SubscriptionFactory
from webhooks import actions, retention, tasks
from webhooks.models import Delivery, DeliveryAttempt, Event

pytestmark = pytest.mark.django_db

S, F, P = Delivery.Status.SUCCEEDED, Delivery.Status.FAILED, Delivery.Status.PENDING


@pytest.fixture
def world():
    """Deliveries of every status and age (days), 3 attempts each, one event per delivery."""
    sub = SubscriptionFactory()
    now = timezone.now()
    made = {}
    for name, status, age in [
        ("succeeded_old", S, 31),
        ("succeeded_recent", S, 29),
        ("failed_old", F, 91),
        ("failed_mid", F, 31),  # past the succeeded retention, within the failed one
        ("pending_old", P, 200),  # still owed: never purged
    ]:
        when = now - timedelta(days=age)
        event = EventFactory(occurred_at=when, fanned_out_at=when)
        delivery = Delivery.objects.create(event=event, subscription=sub, status=status)
        Delivery.objects.filter(pk=delivery.pk).update(created_at=when)
        for number in (1, 2, 3):
            DeliveryAttempt.objects.create(
                delivery=delivery, number=number, request_url=sub.url, created_at=when
            )
        made[name] = delivery
    # An old event nobody subscribed to, and one never fanned out (the sweeper still owes it).
    made["event_alone"] = EventFactory(
        occurred_at=now - timedelta(days=91), fanned_out_at=now - timedelta(days=91)
    )
    made["event_unfanned"] = EventFactory(occurred_at=now - timedelta(days=91))
    return made


def remaining(world):
    deliveries = set(Delivery.objects.values_list("pk", flat=True))
    events = set(Event.objects.values_list("pk", flat=True))
    return {
        name
        for name, obj in world.items()
        if (obj.pk in deliveries if isinstance(obj, Delivery) else obj.pk in events)
    }


def test_defaults_keep_succeeded_30_days_failed_90_days_and_never_pending(world):
    report = retention.purge()
    assert remaining(world) == {"succeeded_recent", "failed_mid", "pending_old", "event_unfanned"}
    assert (report.deliveries, report.attempts) == (2, 6)
    # The succeeded_old event is only 31 days old: kept until 90 although its delivery is gone.
    assert not Event.objects.filter(pk=world["failed_old"].event_id).exists()
    assert Event.objects.filter(pk=world["succeeded_old"].event_id).exists()
    assert report.events == 2  # failed_old's event and event_alone
    assert DeliveryAttempt.objects.count() == 9
    assert not DeliveryAttempt.objects.filter(delivery_id=world["failed_old"].pk).exists()


def test_an_event_with_a_delivery_still_kept_is_not_deleted(world):
    with override_settings(WEBHOOKS_KEEP_EVENTS_DAYS=1):
        retention.purge()
    left = remaining(world)
    assert {"succeeded_recent", "failed_mid", "pending_old"} <= left
    for name in ("succeeded_recent", "failed_mid", "pending_old"):
        assert Event.objects.filter(pk=world[name].event_id).exists()
    assert not Event.objects.filter(pk=world["succeeded_old"].event_id).exists()


@override_settings(
    WEBHOOKS_KEEP_SUCCEEDED_DAYS=None,
    WEBHOOKS_KEEP_FAILED_DAYS=None,
    WEBHOOKS_KEEP_EVENTS_DAYS=None,
)
def test_none_keeps_everything_forever(world):
    report = retention.purge()
    assert (report.deliveries, report.attempts, report.events) == (0, 0, 0)
    assert len(remaining(world)) == len(world)


def test_dry_run_counts_exactly_what_the_purge_then_deletes_and_deletes_nothing(world):
    out = StringIO()
    call_command("webhooks_purge", "--dry-run", stdout=out)
    assert "would delete 2 deliveries, 6 attempts and 2 events" in out.getvalue()
    assert "Keeping succeeded deliveries 30 days, failed deliveries 90 days, events 90 days" in (
        out.getvalue()
    )
    assert len(remaining(world)) == len(world)
    report = retention.purge()
    assert (report.deliveries, report.attempts, report.events) == (2, 6, 2)


def test_the_command_deletes_in_batches_and_shows_its_progress(world):
    out = StringIO()
    with override_settings(WEBHOOKS_KEEP_FAILED_DAYS=30):  # failed_mid goes too
        call_command("webhooks_purge", "--batch-size", "1", "-v", "2", stdout=out)
    text = out.getvalue()
    assert text.count("deleted so far") == 5  # 3 deliveries, 2 events: one transaction each
    assert "Deleted 3 deliveries, 9 attempts and 2 events" in text
    assert "(5 transactions, longest" in text
    assert remaining(world) == {"succeeded_recent", "pending_old", "event_unfanned"}


def test_a_bad_batch_size_is_refused_with_what_is_accepted(world):
    with pytest.raises(CommandError, match="--batch-size must be a positive number"):
        call_command("webhooks_purge", "--batch-size", "0", stdout=StringIO())
    assert len(remaining(world)) == len(world)


def test_a_time_limited_purge_stops_and_the_next_run_finishes(world):
    first = retention.purge(time_limit=0)
    assert not first.finished and first.deliveries == 0
    assert len(remaining(world)) == len(world)
    second = retention.purge(time_limit=60)
    assert second.finished and second.deliveries == 2


def test_the_scheduled_task_purges(world):
    tasks.purge()
    assert "succeeded_old" not in remaining(world)


def test_migrate_schedules_the_hourly_purge_once_and_keeps_an_operators_changes():
    call_command("migrate", verbosity=0)
    [schedule] = Schedule.objects.filter(name=retention.SCHEDULE_NAME)
    assert schedule.func == "webhooks.tasks.purge"
    assert schedule.schedule_type == Schedule.HOURLY and schedule.repeats == -1
    Schedule.objects.filter(pk=schedule.pk).update(schedule_type=Schedule.DAILY)
    call_command("migrate", verbosity=0)
    [again] = Schedule.objects.filter(name=retention.SCHEDULE_NAME)
    assert again.schedule_type == Schedule.DAILY


@pytest.fixture
def asked_for(world):
    """Old finished deliveries that are owed again, beside the world's purgeable ones."""
    sub = world["succeeded_old"].subscription
    now = timezone.now()
    made = {}
    for name, status, fields in [
        ("resend_requested", S, {}),  # asked for below, through the admin's/API's action
        ("recovery_requested", F, {}),
        ("leased", S, {"lease_token": uuid.uuid4(), "leased_until": now + timedelta(minutes=1)}),
        ("lease_expired", S, {"lease_token": uuid.uuid4(), "leased_until": now - timedelta(1)}),
    ]:
        when = now - timedelta(days=200)
        event = EventFactory(occurred_at=when, fanned_out_at=when)
        delivery = Delivery.objects.create(
            event=event, subscription=sub, status=status, next_attempt_at=None, **fields
        )
        Delivery.objects.filter(pk=delivery.pk).update(created_at=when)
        DeliveryAttempt.objects.create(
            delivery=delivery, number=1, request_url=sub.url, created_at=when
        )
        made[name] = delivery
    actions.resend([made["resend_requested"]])
    actions.recover(sub, since=now - timedelta(days=365))  # failed_old and recovery_requested
    return made


def kept_whole(delivery) -> bool:
    """The delivery, its attempts and its event are all still there."""
    return (
        Delivery.objects.filter(pk=delivery.pk).exists()
        and DeliveryAttempt.objects.filter(delivery_id=delivery.pk).exists()
        and Event.objects.filter(pk=delivery.event_id).exists()
    )


@override_settings(WEBHOOKS_KEEP_EVENTS_DAYS=1)
def test_nothing_owed_again_is_purged_resent_recovered_or_being_sent(world, asked_for):
    report = retention.purge()
    for name in ("resend_requested", "recovery_requested", "leased", "failed_old"):
        assert kept_whole({**world, **asked_for}[name]), name
    assert kept_whole(world["pending_old"])  # pending, and due since it was created
    # A lease that ran out long ago is nobody's: that delivery is finished and goes.
    assert not Delivery.objects.filter(pk=asked_for["lease_expired"].pk).exists()
    assert "succeeded_old" not in remaining(world)
    assert (report.deliveries, report.attempts) == (2, 4)  # succeeded_old and lease_expired


def test_a_resend_requested_while_the_purge_runs_is_kept(world):
    """Asked for after the purge picked its batch, before that batch is deleted."""
    target = world["failed_old"]
    asked = []

    def resend_after_picking(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        picking = 'ORDER BY "webhooks_delivery"."created_at" ASC' in sql.replace("`", '"')
        if picking and not asked:
            asked.append(actions.resend([target]))
        return result

    with connection.execute_wrapper(resend_after_picking):
        report = retention.purge()
    assert asked == [1]
    assert kept_whole(target)
    assert "succeeded_old" not in remaining(world)
    assert report.deliveries == 1


def test_the_dry_run_does_not_count_what_is_owed_again(world, asked_for):
    with override_settings(WEBHOOKS_KEEP_EVENTS_DAYS=1):
        assert retention.count().deliveries == 2
        assert retention.purge().deliveries == 2


def test_each_batch_of_a_purge_starts_where_the_last_one_stopped():
    """Deleted rows stay in the ``created_at`` index until a vacuum (PostgreSQL, InnoDB):
    a batch that looked for the oldest again would read every row already purged."""
    sub = SubscriptionFactory()
    when = timezone.now() - timedelta(days=40)
    ages = [when - timedelta(minutes=n) for n in range(6)]
    for at in ages:
        delivery = Delivery.objects.create(
            event=EventFactory(occurred_at=at, fanned_out_at=at), subscription=sub, status=S
        )
        Delivery.objects.filter(pk=delivery.pk).update(created_at=at)
    picks = []

    def record(execute, sql, params, many, context):
        if 'ORDER BY "webhooks_delivery"."created_at" ASC' in sql.replace("`", '"'):
            picks.append(params)  # a batch's pick of the oldest purgeable deliveries
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        report = retention.purge(batch_size=2)

    assert report.deliveries == 6
    oldest_first = sorted(ages)
    # The second and third batches are bounded below by the last age the one before took.
    for batch, params in enumerate(picks[1:3], start=1):
        reached = oldest_first[2 * batch - 1]
        bound = connection.ops.adapt_datetimefield_value(reached)
        assert bound in params or reached in params, (batch, params)
