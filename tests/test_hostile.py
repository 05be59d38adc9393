"""Hostile receivers: every request ends on time, and whatever comes back is logged safely."""

import gc
import os
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.certificates import self_signed, server_context
from tests.hostile import CLOSINGS, FRAMINGS, HostileReceiver
from tests.receiver import Answer
from tests.testapp.models import Article
from webhooks import deadline
from webhooks import delivery as http
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
    http.close_connections()
    for receiver in made:
        receiver.stop()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    return self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def trusted_tls(certificate, monkeypatch):
    """A server TLS context whose certificate (for 127.0.0.1) the deliveries trust."""
    cert_file, key_file = certificate
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
    return server_context(cert_file, key_file)


def post(url: str) -> http.Outcome:
    return http.post(http.OutgoingRequest(url, {"Content-Type": "application/json"}, b"{}"))


@pytest.mark.parametrize(
    ("behaviour", "closing"),
    [
        ("drip_headers", "keep-alive"),
        ("drip_headers", "close"),
        ("drip_body", "keep-alive"),
        ("drip_body", "close"),
        ("drip_body", "http/1.0"),
        ("never_answers", "keep-alive"),
    ],
)
def test_a_request_ends_within_the_timeout_whatever_the_receiver_does(
    behaviour, closing, hostile, subscribe, commit, settings
):
    settings.WEBHOOKS_TIMEOUT = 1.5
    # a byte well within every read timeout: the drip would last 18 s or more
    receiver = hostile(behaviour, closing=closing, drip_interval=0.3)
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


@pytest.fixture
def send():
    """``send(url, within=s)`` → (outcome, seconds taken): posts from a thread of its own
    (its own kept-alive connections), so a request that overstays fails the test instead
    of hanging it (the receivers' ``stop`` ends it)."""
    sender = ThreadPoolExecutor(max_workers=1)

    def timed(url):
        started = time.monotonic()
        outcome = post(url)
        return outcome, time.monotonic() - started

    def send(url, *, within):
        try:
            return sender.submit(timed, url).result(timeout=within)
        except TimeoutError:
            pytest.fail(f"the request was still running after {within} s")

    yield send
    sender.submit(http.close_connections)
    sender.shutdown(wait=False)


# Every way an answer can be framed and end its connection (HTTP/1.0 has no chunks).
DRIPS = [
    pytest.param("drip_body", closing, framing, id=f"body-{closing}-{framing}")
    for closing in CLOSINGS
    for framing in FRAMINGS
    if not (closing == "http/1.0" and "chunk" in framing)
] + [
    pytest.param("drip_headers", closing, "length", id=f"headers-{closing}") for closing in CLOSINGS
]


@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize("connection", ["new", "reused"])
@pytest.mark.parametrize(("behaviour", "closing", "framing"), DRIPS)
def test_the_deadline_holds_however_the_answer_ends_its_connection(
    behaviour, closing, framing, connection, scheme, hostile, send, request, settings
):
    """Once an answer says its connection will close, http.client lets go of the socket
    while the body still reads from it: the deadline must still cut it."""
    settings.WEBHOOKS_TIMEOUT = 1.0
    receiver = hostile(
        behaviour,
        closing=closing,
        framing=framing,
        tls=request.getfixturevalue("trusted_tls") if scheme == "https" else None,
        warm_up=connection == "reused",
        drip_interval=0.2,  # the drip would last 12 s or more
    )
    if connection == "reused":
        warm_up, _ = send(receiver.url, within=5)
        assert warm_up.succeeded  # and the connection stays open for the next request
    outcome, took = send(receiver.url, within=1.0 + 2)  # timeout + margin, and room to spare
    assert outcome.error_kind == Kind.TIMEOUT, outcome
    assert took <= 1.0 + 2
    assert receiver.connections == 1 and receiver.requests == (2 if connection == "reused" else 1)


def test_the_deadline_holds_while_a_tls_handshake_drips(hostile, send, settings):
    """A new connection is under the deadline from its connect on, before any request."""
    settings.WEBHOOKS_TIMEOUT = 1.0
    receiver = hostile("drip_handshake", drip_interval=0.2)  # 16 KiB: the drip lasts an hour
    outcome, _ = send(receiver.url, within=1.0 + 2)
    assert outcome.error_kind == Kind.TIMEOUT, outcome


def open_descriptors() -> int:
    gc.collect()
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts /proc/self/fd")
def test_finished_requests_leave_no_sockets_open(receiver, hostile, settings):
    """The watchdog lets go of a request's sockets when it ends, not at its deadline."""
    settings.WEBHOOKS_TIMEOUT = 30  # the deadlines of these requests are long in the future
    receiver.default = Answer(headers={"Connection": "close"})  # a new connection each time
    before = open_descriptors()
    outcomes = [post(receiver.url) for _ in range(20)]
    assert all(o.succeeded for o in outcomes), outcomes
    dripping = hostile("drip_body", closing="close", drip_interval=0.2)
    settings.WEBHOOKS_TIMEOUT = 0.5
    assert post(dripping.url).error_kind == Kind.TIMEOUT
    dripping.stop()
    waited = time.monotonic()
    while open_descriptors() > before and time.monotonic() - waited < 3:
        time.sleep(0.05)  # the receivers' threads close their side
    assert open_descriptors() <= before
