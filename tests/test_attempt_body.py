"""An attempt keeps no second copy of the body the event holds, yet its log still shows the
exact bytes that were signed and sent."""

import json

import pytest

import webhooks
from tests.api.conftest import API, make_tenant
from tests.receiver import Answer
from webhooks.models import Delivery, DeliveryAttempt
from webhooks.signing import verify

pytestmark = pytest.mark.django_db

BIG = {"text": "é" * 50_000, "n": 1.5, "list": list(range(100))}


@pytest.fixture
def tenant_a(db):
    return make_tenant("Acme")


@pytest.fixture
def retried(receiver, commit, run_due, tenant_a):
    """A 100 kB event that failed twice, then succeeded: three attempts."""
    sub = tenant_a.subscription(receiver, ["article.shared"])
    receiver.answer(Answer(500), Answer(503))
    with commit():
        webhooks.send_event("article.shared", BIG, scope=tenant_a.scope)
    run_due()
    run_due()
    delivery = Delivery.objects.get(subscription=sub)
    assert delivery.status == Delivery.Status.SUCCEEDED and delivery.attempt_count == 3
    return sub, delivery


def test_retries_of_a_large_event_do_not_store_its_body_again(retried):
    _, delivery = retried
    rows = DeliveryAttempt.objects.filter(delivery=delivery).values()
    stored = json.dumps(list(rows), default=str)
    # Three attempts of a 100 kB body: a few kB of headers and outcomes, no body copies.
    assert len(stored) < 10_000, len(stored)


def test_each_attempt_shows_the_exact_signed_bytes_it_sent(retried, receiver):
    sub, delivery = retried
    attempts = list(DeliveryAttempt.objects.filter(delivery=delivery).order_by("number"))
    assert len(receiver.requests) == len(attempts) == 3
    for attempt, received in zip(attempts, receiver.requests, strict=True):
        assert attempt.request_body.encode() == received.body
        assert attempt.request_body_verified is True
        # The rebuilt bytes carry the signature the receiver got (verify raises if not).
        sent_at = int(received.headers["webhook-timestamp"])
        verify(sub.secret, received.headers, attempt.request_body.encode(), now=sent_at)


def test_the_api_shows_the_request_body(retried, receiver, tenant_a):
    _, delivery = retried
    response = tenant_a.client.get(f"{API}deliveries/{delivery.pk}/")
    assert response.status_code == 200
    bodies = [a["request_body"] for a in response.json()["attempts"]]
    assert bodies == [r.body.decode() for r in receiver.requests]


def test_the_admin_attempt_page_shows_the_request_body(retried, admin_client):
    _, delivery = retried
    html = admin_client.get(f"/admin/webhooks/delivery/{delivery.pk}/change/").content.decode()
    assert html.count('class="wh-request-body"') == 3  # once per attempt
    assert html.count("é" * 1000) >= 3  # once per attempt
