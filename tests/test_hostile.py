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


def test_a_host_name_that_never_resolves_ends_within_the_timeout(
    receiver, subscribe, commit, settings, name_servers_never_answer
):
    """The lookup counts against the request's deadline, as connecting does: without it
    the attempt waited for the resolver (up to 30 s and more), holding its request
    thread and the URL's slot."""
    settings.WEBHOOKS_TIMEOUT = 1
    settings.WEBHOOKS_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    sub = subscribe(receiver, ["article.created"])
    sub.url = f"http://{name_servers_never_answer}:{receiver.port}/hook"
    sub.save()
    started = time.monotonic()
    with commit():
        Article.objects.create(title="hello")
    took = time.monotonic() - started
    delivery = Delivery.objects.get()
    attempt = delivery.attempts.get()
    assert attempt.error_kind == Kind.DNS_FAILURE, attempt.error_message
    assert attempt.error_message == (
        "The receiver's host name was not resolved within 1 seconds "
        "(its name servers did not answer)."
    )
    assert attempt.duration_ms <= (1 + deadline.MARGIN) * 1000
    assert took < 1 + deadline.MARGIN + 3  # generous: recording on a slow machine
    assert delivery.status == Delivery.Status.PENDING and delivery.next_attempt_at
    assert receiver.requests == []


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
    ("drip_body", closing, framing)
    for closing in CLOSINGS
    for framing in FRAMINGS
    if not (closing == "http/1.0" and "chunk" in framing)
] + [("drip_headers", closing, "length") for closing in CLOSINGS]


def timed_drip(receiver, connection: str) -> tuple[http.Outcome, float, http.Outcome | None]:
    """One case, in a thread of its own (its own kept-alive connections): a first request
    that leaves its connection open when ``connection`` is "reused", then the timed one."""
    try:
        warm_up = post(receiver.url) if connection == "reused" else None
        started = time.monotonic()
        outcome = post(receiver.url)
        return outcome, time.monotonic() - started, warm_up
    finally:
        http.close_connections()


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_the_deadline_holds_however_the_answer_ends_its_connection(
    scheme, hostile, request, settings
):
    """Once an answer says its connection will close, http.client lets go of the socket
    while the body still reads from it: the deadline must still cut it. Every framing,
    closing and connection (new, kept-alive) at once, each case from its own thread: the
    cases wait on the deadline, not on each other."""
    settings.WEBHOOKS_TIMEOUT = 1.0
    tls = request.getfixturevalue("trusted_tls") if scheme == "https" else None
    cases = [(*drip, connection) for drip in DRIPS for connection in ("new", "reused")]
    receivers = [
        hostile(
            behaviour,
            closing=closing,
            framing=framing,
            tls=tls,
            warm_up=connection == "reused",
            drip_interval=0.2,  # the drip would last 12 s or more
        )
        for behaviour, closing, framing, connection in cases
    ]
    senders = ThreadPoolExecutor(max_workers=len(cases))
    futures = [
        senders.submit(timed_drip, receiver, case[-1])
        for receiver, case in zip(receivers, cases, strict=True)
    ]
    failures = []
    try:
        for case, receiver, future in zip(cases, receivers, futures, strict=True):
            name = "-".join(case)
            try:
                # Warm-up, then timeout + margin, and room to spare on a busy machine.
                outcome, took, warm_up = future.result(timeout=5 + 1.0 + 3)
            except TimeoutError:
                failures.append(f"{name}: still running after 9 s")
                continue
            if warm_up is not None and not warm_up.succeeded:
                failures.append(f"{name}: the first request failed: {warm_up}")
            elif outcome.error_kind != Kind.TIMEOUT or took > 1.0 + 2:
                failures.append(
                    f"{name}: {outcome.error_kind or outcome.status_code} in {took:.1f} s"
                )
            elif (receiver.connections, receiver.requests) != (1, 1 + (warm_up is not None)):
                failures.append(f"{name}: {receiver.connections} connections")
    finally:
        senders.shutdown(wait=False)  # a request that overstays is ended by the receivers' stop
    assert failures == []


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


def test_urllib3_logs_nothing_of_a_webhooks_request(hostile, receiver, settings, caplog):
    """urllib3 logs a request's URL, which may carry the customer's secret: its request
    line at DEBUG, a receiver's malformed headers as a warning with a traceback (once per
    answer: a hostile receiver would flood the logs). Nothing of it for a webhook's request;
    the attempt records the answer. A request of the host's own is logged as before."""
    import logging

    import urllib3

    settings.WEBHOOKS_TIMEOUT = 0.5
    secret = "?token=s3cret-in-the-url"
    dripping = hostile("drip_headers", drip_interval=0.2)
    with caplog.at_level(logging.DEBUG, logger="urllib3"):
        assert post(receiver.url + secret).status_code == 200
        assert post(dripping.url + secret).error_kind == Kind.TIMEOUT  # cut mid-headers
        assert not [r for r in caplog.records if r.name.startswith("urllib3")]
        urllib3.PoolManager().request("POST", receiver.url + secret, retries=False)
    assert any("s3cret" in r.getMessage() for r in caplog.records if r.name.startswith("urllib3"))
