"""Hostile receivers: every request ends on time, and whatever comes back is logged safely."""

import time

import pytest

from tests.hostile import HostileReceiver
from tests.receiver import Answer
from tests.testapp.models import Article
from webhooks import deadline
from webhooks.models import Delivery, DeliveryAttempt

pytestmark = pytest.mark.django_db

Kind = DeliveryAttempt.ErrorKind


@pytest.fixture
def hostile():
    made = []

    def make(behaviour, **kwargs):
        receiver = HostileReceiver(behaviour, **kwargs)
        made.append(receiver)
        return receiver

    yield make
    for receiver in made:
        receiver.stop()


@pytest.mark.parametrize("behaviour", ["drip_headers", "drip_body", "never_answers"])
def test_a_request_ends_within_the_timeout_whatever_the_receiver_does(
    behaviour, hostile, subscribe, commit, settings
):
    settings.WEBHOOKS_TIMEOUT = 1.5
    receiver = hostile(behaviour, drip_interval=0.3)  # a byte well within every read timeout
    subscribe(receiver, ["article.created"])
    started = time.monotonic()
    with commit():
        Article.objects.create(title="hello")
    took = time.monotonic() - started
    delivery = Delivery.objects.get()
    attempt = delivery.attempts.get()
    assert attempt.error_kind == Kind.TIMEOUT, attempt.error_message
    assert attempt.duration_ms <= (1.5 + deadline.MARGIN) * 1000
    assert took < 1.5 + deadline.MARGIN + 3  # generous: recording on a slow machine
    assert delivery.status == Delivery.Status.PENDING and delivery.next_attempt_at


@pytest.mark.parametrize(
    ("behaviour", "status", "expected_body"),
    [
        ("nul_body", 200, "ok \\x00 a text answer"),
        ("binary", 500, "[binary image/png, "),
        ("invalid_utf8", 500, "caf\ufffd au lait, \ufffd and"),
        ("nul_header", 500, "bad"),
    ],
)
def test_any_answer_is_logged_in_a_form_the_database_stores(
    behaviour, status, expected_body, hostile, receiver, subscribe, commit
):
    bad = hostile(behaviour)
    subscribe(bad, ["article.created"])
    healthy = subscribe(receiver, ["article.created"])
    with commit():
        Article.objects.create(title="hello")
    attempt = DeliveryAttempt.objects.get(delivery__subscription__url=bad.url)
    assert attempt.response_status_code == status
    assert attempt.response_body.startswith(expected_body)
    assert "\x00" not in attempt.response_body
    assert all("\x00" not in v for v in attempt.response_headers.values())
    if behaviour == "nul_header":
        assert attempt.response_headers["X-Trace"] == "a\\x00b"
    # the other tenant's delivery, recorded alongside, is not disturbed
    assert Delivery.objects.get(subscription=healthy).status == Delivery.Status.SUCCEEDED
    assert len(receiver.requests) == 1


def test_a_receiver_closing_mid_response_is_logged_and_retried(hostile, subscribe, commit):
    bad = hostile("closes_mid_response")
    subscribe(bad, ["article.created"])
    with commit():
        Article.objects.create(title="hello")
    delivery = Delivery.objects.get()
    attempt = delivery.attempts.get()
    assert attempt.error_kind == Kind.INVALID_RESPONSE and not attempt.succeeded
    assert delivery.status == Delivery.Status.PENDING and delivery.lease_token is None


def test_a_deadline_also_bounds_a_reused_keep_alive_connection(receiver, subscribe, settings):
    """The deadline belongs to the request, not to the connection it happens to reuse."""
    from webhooks import delivery as http

    settings.WEBHOOKS_TIMEOUT = 1.0
    request = http.OutgoingRequest(receiver.url, {"Content-Type": "application/json"}, b"{}")
    assert http.post(request).succeeded  # opens a pooled connection
    receiver.answer(Answer(delay=3))
    started = time.monotonic()
    outcome = http.post(request)
    assert outcome.error_kind == Kind.TIMEOUT
    assert time.monotonic() - started < 1.0 + deadline.MARGIN + 0.5


def test_a_task_gives_back_the_rest_of_an_endpoint_that_timed_out(
    hostile, receiver, subscribe, settings
):
    """One unanswering endpoint cannot keep a task (and the events queued behind it) busy
    for a timeout per delivery: after its first timeout, its other deliveries go back."""
    import webhooks
    from webhooks import dispatch, outbox

    settings.WEBHOOKS_TIMEOUT = 1.0
    settings.WEBHOOKS_MAX_CONCURRENCY_PER_ENDPOINT = 1
    silent = hostile("never_answers")
    for _ in range(5):
        subscribe(silent, all_events=True)
    healthy = subscribe(receiver, all_events=True)
    event = webhooks.send_event("article.shared", {})
    token, ids = outbox.claim(outbox.fan_out(event.pk))
    started = time.monotonic()
    dispatch.send_claimed(ids, token)
    assert time.monotonic() - started < 2 * (1.0 + deadline.MARGIN)  # not 5 timeouts
    assert silent.requests == 1
    assert Delivery.objects.get(subscription=healthy).status == Delivery.Status.SUCCEEDED
    given_back = Delivery.objects.filter(subscription__url=silent.url, attempt_count=0)
    assert given_back.count() == 4
    assert all(d.lease_token is None and d.status == "pending" for d in given_back)
