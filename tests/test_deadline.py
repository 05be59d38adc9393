"""The watchdog that ends each request at its deadline (``webhooks.deadline``)."""

import socket
import time

import pytest

from webhooks import deadline
from webhooks import delivery as http


@pytest.fixture
def socket_pairs():
    pairs = []

    def make():
        pair = socket.socketpair()
        pair[0].settimeout(5)  # a deadline that never fires fails the test, not hangs it
        pairs.append(pair)
        return pair[0]

    yield make
    for pair in pairs:
        for sock in pair:
            sock.close()


def _watched(seconds: float, sock=None) -> deadline.RequestDeadline:
    limit = deadline.RequestDeadline(seconds)
    if sock is not None:
        limit.watch(sock)
    deadline._watchdog.add(limit)
    return limit


def _cut_within(sock, seconds: float) -> bool:
    started = time.monotonic()
    return sock.recv(1) == b"" and time.monotonic() - started < seconds


def test_requests_sharing_a_timeout_do_not_wake_the_watchdog_each(receiver, settings, monkeypatch):
    """The watchdog sleeps until the earliest deadline; a request whose deadline comes after
    it need not wake it. Twenty requests with one timeout cost at most one wake-up (the
    first, if no deadline was waiting), not twenty thread switches."""
    settings.WEBHOOKS_TIMEOUT = 30
    request = http.OutgoingRequest(receiver.url, {"Content-Type": "application/json"}, b"{}")
    assert http.post(request).succeeded  # the watchdog's thread is running
    wake = deadline._watchdog._wake
    woken = []
    notify = wake.notify
    monkeypatch.setattr(wake, "notify", lambda *a: (woken.append(1), notify(*a)))
    for _ in range(20):
        assert http.post(request).succeeded
    assert len(woken) <= 1


def test_a_deadline_before_those_waiting_still_fires_on_time(socket_pairs):
    """A shorter timeout (settings changed, a test request) wakes the watchdog sleeping
    until a later deadline."""
    later = _watched(60)
    sooner_sock = socket_pairs()
    sooner = _watched(0.2, sooner_sock)
    try:
        assert _cut_within(sooner_sock, 3)
        assert sooner.expired and not later.expired
    finally:
        later.finish()
        sooner.finish()


def test_deadlines_a_moment_apart_all_fire(socket_pairs):
    """Deadlines handled together at one wake-up each end their own request."""
    socks = [socket_pairs() for _ in range(30)]
    limits = [_watched(0.1 + i * 0.002, sock) for i, sock in enumerate(socks)]
    try:
        assert all(_cut_within(sock, 3) for sock in socks)
        assert all(limit.expired for limit in limits)
    finally:
        for limit in limits:
            limit.finish()


def test_a_finished_request_is_left_alone_at_its_deadline(socket_pairs):
    sock = socket_pairs()
    limit = _watched(0.05, sock)
    limit.finish()
    time.sleep(0.05 + 3 * deadline.TICK)
    assert not limit.expired
    sock.setblocking(False)
    with pytest.raises(BlockingIOError):  # open, nothing to read: not shut down
        sock.recv(1)
