"""Test events, resends, recovery and secret rotation — what admins and API clients trigger."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.receiver import Answer
from tests.test_signing import independent_signature
from tests.testapp.models import Article
from webhooks import actions
from webhooks.models import Delivery, DeliveryAttempt, Event

pytestmark = pytest.mark.django_db


def test_test_event_goes_only_to_that_webhook_and_reports_the_outcome(
    receiver, other_receiver, subscribe, commit
):
    sub = subscribe(receiver, ["article.created"])
    subscribe(other_receiver, all_events=True)
    with commit():
        delivery = actions.send_test_event(sub)
    assert delivery.status == Delivery.Status.PENDING  # queued, not sent in the caller
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.SUCCEEDED
    assert delivery.last_status_code == 200
    assert receiver.types() == ["webhook.test"] and other_receiver.requests == []
    assert delivery.attempts.get().trigger == DeliveryAttempt.Trigger.MANUAL


def test_resend_is_a_manual_attempt_with_the_same_webhook_id(receiver, subscribe, commit):
    sub = subscribe(receiver, ["article.created"])
    with commit():
        Article.objects.create(title="x")
    delivery = Delivery.objects.get(subscription=sub)
    with commit():
        actions.resend([delivery])
    assert len(receiver.requests) == 2
    first, second = receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == delivery.webhook_id
    assert [a.trigger for a in delivery.attempts.order_by("number")] == ["automatic", "manual"]


def test_failed_manual_resend_leaves_a_failed_delivery_failed(
    receiver, subscribe, commit, settings
):
    settings.WEBHOOKS_RETRY_SCHEDULE = []
    sub = subscribe(receiver, ["article.created"])
    receiver.default = Answer(500)
    with commit():
        Article.objects.create(title="x")
    delivery = Delivery.objects.get(subscription=sub)
    assert delivery.status == Delivery.Status.FAILED
    with commit():
        actions.resend_one(delivery)
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.FAILED and delivery.attempt_count == 2
    receiver.default = Answer(200)
    with commit():
        actions.resend_one(delivery)
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.SUCCEEDED


def test_recover_resends_failed_deliveries_of_the_window_only(
    receiver, subscribe, commit, settings
):
    settings.WEBHOOKS_RETRY_SCHEDULE = []
    sub = subscribe(receiver, ["article.created"])
    receiver.default = Answer(500)
    with commit():
        for title in "abc":
            Article.objects.create(title=title)
    old = Delivery.objects.order_by("created_at").first()
    Delivery.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=3))
    receiver.default = Answer(200)
    with commit():
        count = actions.recover(sub, since=timezone.now() - timedelta(days=1))
    assert count == 2
    assert Delivery.objects.filter(status=Delivery.Status.SUCCEEDED).count() == 2
    assert Delivery.objects.get(pk=old.pk).status == Delivery.Status.FAILED


def test_rotation_signs_with_new_and_old_secret_until_the_overlap_ends(receiver, subscribe, commit):
    sub = subscribe(receiver, all_events=True)
    old_secret = sub.secret
    new_secret = actions.rotate_secret(sub, overlap=3600)
    assert new_secret != old_secret and new_secret.startswith("whsec_")
    with commit():
        actions.send_test_event(sub)
    request = receiver.requests[-1]
    msg_id, ts = request.headers["webhook-id"], int(request.headers["webhook-timestamp"])
    assert request.headers["webhook-signature"].split(" ") == [
        independent_signature(new_secret, msg_id, ts, request.body),
        independent_signature(old_secret, msg_id, ts, request.body),
    ]
    sub.previous_secret_expires_at = timezone.now() - timedelta(seconds=1)
    sub.save()
    with commit():
        actions.send_test_event(sub)
    assert len(receiver.requests[-1].headers["webhook-signature"].split(" ")) == 1


def test_a_delivery_being_sent_cannot_be_resent_at_the_same_time(receiver, subscribe, commit):
    from webhooks import outbox
    from webhooks.exceptions import DeliveryBusy

    sub = subscribe(receiver, all_events=True)
    with commit():
        delivery = actions.send_test_event(sub)
    outbox.claim([delivery.pk], due_only=False)  # a worker holds it
    with pytest.raises(DeliveryBusy):
        actions.resend_one(delivery)


def test_a_resend_through_the_task_queue_releases_its_lease(receiver, subscribe, commit):
    sub = subscribe(receiver, all_events=True)
    with commit():
        delivery = actions.send_test_event(sub)
    with commit():
        actions.resend_one(delivery)  # via webhooks.tasks.deliver (sync mode here)
    delivery.refresh_from_db()
    assert delivery.attempt_count == 2
    assert delivery.lease_token is None and delivery.leased_until is None
    assert delivery.resend_requested_at is None  # the requested attempt was made
    with commit():
        actions.resend_one(delivery)  # not "being sent right now"
    assert len(receiver.requests) == 3


def test_a_failed_test_event_is_failed_and_never_retried(receiver, subscribe, run_due, commit):
    sub = subscribe(receiver, ["article.created"])
    receiver.default = Answer(500)
    with commit():
        delivery = actions.send_test_event(sub)
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.FAILED and delivery.next_attempt_at is None
    run_due()
    assert len(receiver.requests) == 1


def test_recover_of_any_size_sends_every_delivery_and_says_how_many_were_queued(
    receiver, subscribe, commit, settings, run_due
):
    """More than the caller enqueues at once (the sweeper sends the rest); none dropped."""
    settings.WEBHOOKS_RETRY_SCHEDULE = []
    settings.WEBHOOKS_BATCH_SIZE = 50
    sub = subscribe(receiver, ["article.created"])
    events = Event.objects.bulk_create(
        Event(type="article.created", data={"n": n}, fanned_out_at=timezone.now())
        for n in range(1200)
    )
    Delivery.objects.bulk_create(
        Delivery(event=e, subscription=sub, status=Delivery.Status.FAILED, next_attempt_at=None)
        for e in events
    )
    with commit():
        queued = actions.recover(sub, since=timezone.now() - timedelta(days=1))
    assert queued == 1200
    assert Delivery.objects.filter(status=Delivery.Status.SUCCEEDED).count() == 1000
    run_due(timedelta(seconds=0))  # the sweeper sends what the caller left
    assert Delivery.objects.filter(status=Delivery.Status.SUCCEEDED).count() == 1200
    assert Delivery.objects.filter(resend_requested_at__isnull=False).count() == 0
    assert DeliveryAttempt.objects.filter(trigger="manual").count() == 1200
    ids = [r.headers["webhook-id"] for r in receiver.requests]
    assert len(ids) == len(set(ids)) == 1200  # each sent once


def test_a_resend_requested_while_the_broker_is_down_is_sent_by_the_sweeper(
    receiver, subscribe, commit, run_due, monkeypatch
):
    from webhooks import outbox

    sub = subscribe(receiver, all_events=True)
    with commit():
        delivery = actions.send_test_event(sub)
    monkeypatch.setattr(outbox, "enqueue", lambda *args: False)  # the broker is down
    with commit():
        assert actions.resend([delivery]) == 1
    assert len(receiver.requests) == 1
    delivery.refresh_from_db()
    assert delivery.lease_token is None and delivery.resend_requested_at is not None
    monkeypatch.undo()  # the broker is back
    run_due(timedelta(seconds=0))
    assert len(receiver.requests) == 2
    assert delivery.attempts.filter(trigger="manual").count() == 2


def test_a_resend_given_back_out_of_time_is_not_dropped(receiver, subscribe, commit, run_due):
    """A worker out of its send budget gives requested resends back; they are sent later."""
    from django.test import override_settings

    subs = [subscribe(receiver, all_events=True) for _ in range(3)]
    with commit():
        deliveries = [actions.send_test_event(sub) for sub in subs]
    receiver.default = Answer(200, delay=1.2)
    with override_settings(WEBHOOKS_LEASE_SECONDS=4.5, WEBHOOKS_MAX_CONCURRENCY_PER_ENDPOINT=1):
        with commit():
            assert actions.resend(deliveries) == 3
    assert len(receiver.requests) == 3 + 1  # one fitted in the budget
    receiver.default = Answer(200)
    run_due(timedelta(seconds=0))
    assert len(receiver.requests) == 3 + 3
    assert DeliveryAttempt.objects.filter(trigger="manual").count() == 6
