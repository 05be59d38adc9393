"""Test events, resends, recovery and secret rotation — what admins and API clients trigger."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.receiver import Answer
from tests.test_signing import independent_signature
from tests.testapp.models import Article
from webhooks import actions
from webhooks.models import Delivery, DeliveryAttempt

pytestmark = pytest.mark.django_db


def test_test_event_goes_only_to_that_webhook_and_reports_the_outcome(
    receiver, other_receiver, subscribe
):
    sub = subscribe(receiver, ["article.created"])
    subscribe(other_receiver, all_events=True)
    delivery = actions.send_test_event(sub)
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
    actions.resend_one(delivery, wait=True)
    assert delivery.status == Delivery.Status.FAILED and delivery.attempt_count == 2
    receiver.default = Answer(200)
    actions.resend_one(delivery, wait=True)
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


def test_rotation_signs_with_new_and_old_secret_until_the_overlap_ends(receiver, subscribe):
    sub = subscribe(receiver, all_events=True)
    old_secret = sub.secret
    new_secret = actions.rotate_secret(sub, overlap=3600)
    assert new_secret != old_secret and new_secret.startswith("whsec_")
    actions.send_test_event(sub)
    request = receiver.requests[-1]
    msg_id, ts = request.headers["webhook-id"], int(request.headers["webhook-timestamp"])
    assert request.headers["webhook-signature"].split(" ") == [
        independent_signature(new_secret, msg_id, ts, request.body),
        independent_signature(old_secret, msg_id, ts, request.body),
    ]
    sub.previous_secret_expires_at = timezone.now() - timedelta(seconds=1)
    sub.save()
    actions.send_test_event(sub)
    assert len(receiver.requests[-1].headers["webhook-signature"].split(" ")) == 1


def test_a_delivery_being_sent_cannot_be_resent_at_the_same_time(receiver, subscribe):
    from webhooks import outbox
    from webhooks.exceptions import DeliveryBusy

    sub = subscribe(receiver, all_events=True)
    delivery = actions.send_test_event(sub)
    outbox.claim([delivery.pk], due_only=False)  # a worker holds it
    with pytest.raises(DeliveryBusy):
        actions.resend_one(delivery)


def test_a_resend_through_the_task_queue_releases_its_lease(receiver, subscribe, commit):
    sub = subscribe(receiver, all_events=True)
    delivery = actions.send_test_event(sub)
    with commit():  # wait=False: via webhooks.tasks.deliver once committed (sync mode here)
        actions.resend_one(delivery)
    delivery.refresh_from_db()
    assert delivery.attempt_count == 2
    assert delivery.lease_token is None and delivery.leased_until is None
    with commit():
        actions.resend_one(delivery)  # not "being sent right now"
    assert len(receiver.requests) == 3


def test_a_failed_test_event_is_failed_and_never_retried(receiver, subscribe, run_due):
    sub = subscribe(receiver, ["article.created"])
    receiver.default = Answer(500)
    delivery = actions.send_test_event(sub)
    assert delivery.status == Delivery.Status.FAILED and delivery.next_attempt_at is None
    run_due()
    assert len(receiver.requests) == 1
