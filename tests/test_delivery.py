"""A committed change becomes a signed POST; failures are retried, logged and classified."""

import base64
import json
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from tests.receiver import Answer
from tests.test_signing import independent_signature
from tests.testapp.models import Article
from webhooks.models import Delivery, DeliveryAttempt
from webhooks.signals import delivery_failed, delivery_succeeded, subscription_disabled

pytestmark = pytest.mark.django_db

Kind = DeliveryAttempt.ErrorKind


def test_rolled_back_save_sends_nothing(receiver, subscribe, commit, run_due):
    subscribe(receiver, ["article.created"])
    with commit(), pytest.raises(RuntimeError), transaction.atomic():
        Article.objects.create(title="ghost")
        raise RuntimeError("host request failed")
    run_due()
    assert receiver.requests == []


def test_commit_sends_one_request_per_matching_subscription_and_none_to_others(
    receiver, other_receiver, subscribe, commit
):
    subscribe(receiver, ["article.created"])
    subscribe(receiver, all_events=True)
    subscribe(other_receiver, ["article.deleted"])
    subscribe(other_receiver, ["article.created"], scope="another-tenant")
    subscribe(other_receiver, ["article.created"], is_active=False)
    with commit():
        Article.objects.create(title="hello")
    assert receiver.types() == ["article.created", "article.created"]
    assert other_receiver.requests == []
    ids = {r.headers["webhook-id"] for r in receiver.requests}
    assert len(ids) == 2  # one message id per subscription


def test_request_is_a_signed_standard_webhook(receiver, subscribe, commit):
    sub = subscribe(receiver, ["article.created"])
    with commit():
        article = Article.objects.create(title="hello")
    [request] = receiver.requests
    body = request.json()
    assert body["type"] == "article.created"
    assert body["data"] == {"id": article.pk, "title": "hello", "status": "draft"}
    assert set(body) == {"id", "type", "timestamp", "data"}
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"].startswith("django-webhooks/")
    msg_id, ts = request.headers["webhook-id"], int(request.headers["webhook-timestamp"])
    assert abs(ts - timezone.now().timestamp()) < 60
    expected = independent_signature(sub.secret, msg_id, ts, request.body)
    assert request.headers["webhook-signature"] == expected
    assert "Authorization" not in request.headers


def test_basic_auth_and_extra_headers_are_sent(receiver, subscribe, commit):
    subscribe(
        receiver,
        ["article.created"],
        basic_auth_username="acme",
        basic_auth_password="s3cret",
        headers={"X-Team": "payments", "X-Api-Key": "k-123"},
    )
    with commit():
        Article.objects.create(title="hello")
    [request] = receiver.requests
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"acme:s3cret").decode()
    assert request.headers["X-Team"] == "payments"
    assert request.headers["X-Api-Key"] == "k-123"


def test_attempt_log_redacts_credentials_and_secret_headers(receiver, subscribe, commit):
    subscribe(
        receiver,
        ["article.created"],
        basic_auth_username="acme",
        basic_auth_password="s3cret",
        headers={"X-Team": "payments", "X-Api-Key": "k-123"},
    )
    with commit():
        Article.objects.create(title="hello")
    attempt = DeliveryAttempt.objects.get()
    logged = json.dumps(attempt.request_headers)
    assert "s3cret" not in logged and "k-123" not in logged
    assert base64.b64encode(b"acme:s3cret").decode() not in logged
    assert attempt.request_headers["Authorization"] == "Basic [redacted]"
    assert attempt.request_headers["X-Api-Key"] == "[redacted]"
    assert attempt.request_headers["X-Team"] == "payments"
    assert attempt.request_headers["webhook-id"].startswith("msg_")


def test_500_then_200_makes_two_attempts_and_succeeds(receiver, subscribe, commit, run_due):
    subscribe(receiver, ["article.created"])
    receiver.answer(Answer(500, "boom"))
    with commit():
        Article.objects.create(title="hello")
    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.PENDING
    assert timedelta(seconds=4) < delivery.next_attempt_at - timezone.now() <= timedelta(seconds=5)
    run_due()
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.SUCCEEDED
    first, second = delivery.attempts.order_by("number")
    assert (first.number, first.response_status_code, first.error_kind) == (1, 500, Kind.HTTP_5XX)
    assert first.response_body == "boom"
    assert (second.number, second.response_status_code, second.succeeded) == (2, 200, True)
    # the same message id on every try, so receivers can de-duplicate
    assert receiver.requests[0].headers["webhook-id"] == receiver.requests[1].headers["webhook-id"]


def test_timeout_is_retried_not_crashed(receiver, subscribe, commit, settings, run_due):
    settings.WEBHOOKS_TIMEOUT = 0.3
    subscribe(receiver, ["article.created"])
    receiver.answer(Answer(delay=1.0))
    with commit():
        Article.objects.create(title="hello")
    delivery = Delivery.objects.get()
    attempt = delivery.attempts.get()
    assert attempt.error_kind == Kind.TIMEOUT and attempt.response_status_code is None
    assert delivery.status == Delivery.Status.PENDING and delivery.next_attempt_at
    run_due()
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.SUCCEEDED


def test_refused_connection_is_retried_not_crashed(receiver, subscribe, commit):
    sub = subscribe(receiver, ["article.created"])
    receiver.stop()  # nothing listens on that port any more
    with commit():
        Article.objects.create(title="hello")
    delivery = Delivery.objects.get()
    assert delivery.attempts.get().error_kind == Kind.CONNECTION_REFUSED
    assert delivery.status == Delivery.Status.PENDING
    assert sub.__class__.objects.get(pk=sub.pk).consecutive_failures == 1


def test_reset_connection_is_classified_and_retried(receiver, subscribe, commit, run_due):
    subscribe(receiver, ["article.created"])
    receiver.answer(Answer(reset=True))
    with commit():
        Article.objects.create(title="hello")
    delivery = Delivery.objects.get()
    assert delivery.attempts.get().error_kind == Kind.CONNECTION_RESET
    run_due()
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.SUCCEEDED


def test_redirect_is_not_followed_and_counts_as_failure(
    receiver, other_receiver, subscribe, commit
):
    subscribe(receiver, ["article.created"])
    receiver.answer(Answer(302, headers={"Location": other_receiver.url}))
    with commit():
        Article.objects.create(title="hello")
    assert other_receiver.requests == []
    assert Delivery.objects.get().attempts.get().error_kind == Kind.REDIRECT


def test_410_disables_the_subscription_with_a_reason(receiver, subscribe, commit, caught):
    sub = subscribe(receiver, ["article.created"])
    disabled = caught(subscription_disabled)
    receiver.answer(Answer(410))
    with commit():
        Article.objects.create(title="hello")
    sub.refresh_from_db()
    assert not sub.is_active and "410" in sub.disabled_reason
    assert Delivery.objects.get().status == Delivery.Status.FAILED
    assert len(disabled) == 1 and "410" in disabled[0]["reason"]
    with commit():
        Article.objects.create(title="again")
    assert len(receiver.requests) == 1  # a disabled webhook gets nothing more


def test_a_receiver_can_stop_the_retries_of_one_message_without_failing_the_webhook(
    receiver, subscribe, commit, caught, run_due, settings
):
    """``Webhook-Delivery: abort-message`` on a failed answer: that message is not retried,
    the webhook stays on, its failure streak does not grow, nobody is told it fails."""
    settings.WEBHOOKS_DISABLE_AFTER = 0  # any delivery given up would switch it off
    sub = subscribe(receiver, ["article.created"])
    failed = caught(delivery_failed)
    receiver.answer(
        Answer(422, headers={"Webhook-Delivery": "abort-message"}),  # this one: no retries
        Answer(500),  # the next message: retried as usual
    )
    with commit():
        Article.objects.create(title="refused")
    refused = Delivery.objects.get()
    assert refused.status == Delivery.Status.FAILED and refused.next_attempt_at is None
    assert "abort-message" in refused.attempts.get().error_message
    sub.refresh_from_db()
    assert sub.is_active and sub.consecutive_failures == 0 and sub.failing_since is None
    assert failed == []
    with commit():
        Article.objects.create(title="next")
    retried = Delivery.objects.exclude(pk=refused.pk).get()
    assert retried.status == Delivery.Status.PENDING and retried.next_attempt_at is not None
    run_due()
    assert len(receiver.requests) == 3  # the refused message was never sent again
    retried.refresh_from_db()
    assert retried.status == Delivery.Status.SUCCEEDED


def test_retry_after_is_respected_within_bounds(receiver, subscribe, commit, settings, run_due):
    settings.WEBHOOKS_MAX_RETRY_AFTER = 600
    subscribe(receiver, ["article.created"])
    receiver.answer(
        Answer(503, headers={"Retry-After": "120"}), Answer(429, headers={"Retry-After": "99999"})
    )
    with commit():
        Article.objects.create(title="hello")
    delivery = Delivery.objects.get()
    wait = (delivery.next_attempt_at - timezone.now()).total_seconds()
    assert 110 < wait <= 120  # not the schedule's 5 s
    run_due(timedelta(seconds=60))  # not yet due
    assert len(receiver.requests) == 1
    run_due(timedelta(seconds=121))
    delivery.refresh_from_db()
    wait = (delivery.next_attempt_at - timezone.now()).total_seconds()
    assert 590 < wait <= 600  # capped


def test_retries_exhausted_marks_the_delivery_failed(
    receiver, subscribe, commit, settings, run_due, caught
):
    settings.WEBHOOKS_RETRY_SCHEDULE = [1, 2]
    subscribe(receiver, ["article.created"])
    failures = caught(delivery_failed)
    receiver.default = Answer(500)
    with commit():
        Article.objects.create(title="hello")
    run_due()
    run_due()
    run_due()
    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.FAILED
    assert delivery.attempt_count == 3 and delivery.next_attempt_at is None
    assert len(receiver.requests) == 3
    assert [f["delivery"].pk for f in failures] == [delivery.pk]


def test_long_failing_endpoint_is_disabled_when_a_delivery_gives_up(
    receiver, subscribe, commit, settings
):
    settings.WEBHOOKS_RETRY_SCHEDULE = []
    settings.WEBHOOKS_DISABLE_AFTER = 3600
    sub = subscribe(receiver, ["article.created"])
    receiver.default = Answer(500)
    sub.__class__.objects.filter(pk=sub.pk).update(
        failing_since=timezone.now() - timedelta(hours=2), consecutive_failures=40
    )
    with commit():
        Article.objects.create(title="hello")
    sub.refresh_from_db()
    assert not sub.is_active and "failed since" in sub.disabled_reason


def test_success_resets_the_failure_streak(receiver, subscribe, commit, run_due, caught):
    sub = subscribe(receiver, ["article.created"])
    successes = caught(delivery_succeeded)
    receiver.answer(Answer(500))
    with commit():
        Article.objects.create(title="hello")
    sub.refresh_from_db()
    assert sub.consecutive_failures == 1 and sub.failing_since
    run_due()
    sub.refresh_from_db()
    assert sub.consecutive_failures == 0 and sub.failing_since is None
    assert [s["attempt"].number for s in successes] == [2]


def test_long_response_bodies_are_truncated(receiver, subscribe, commit, settings):
    settings.WEBHOOKS_RESPONSE_BODY_LIMIT = 100
    subscribe(receiver, ["article.created"])
    receiver.answer(Answer(200, "x" * 10_000))
    with commit():
        Article.objects.create(title="hello")
    assert DeliveryAttempt.objects.get().response_body == "x" * 100


def test_dns_failure_is_classified(subscribe, commit, db):
    from tests.factories import SubscriptionFactory

    SubscriptionFactory(url="http://does-not-exist.invalid/hook", all_events=True)
    with commit():
        Article.objects.create(title="hello")
    assert DeliveryAttempt.objects.get().error_kind == Kind.DNS_FAILURE


def test_tls_failure_is_classified(receiver, commit, db):
    from tests.factories import SubscriptionFactory

    # https:// to a plain-HTTP server: the handshake fails
    SubscriptionFactory(url=receiver.url.replace("http://", "https://"), all_events=True)
    with commit():
        Article.objects.create(title="hello")
    assert DeliveryAttempt.objects.get().error_kind == Kind.TLS_ERROR
    assert Delivery.objects.get().status == Delivery.Status.PENDING
