import os
import socket
import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import SubscriptionFactory
from tests.receiver import Receiver


@pytest.fixture(autouse=True)
def tests_send_inline():
    """A test that makes this process look like a django-q2 worker (``post_spawn``) must not
    leave the next tests handing their deliveries to a background sender."""
    yield
    from webhooks import sender

    if sender._worker_pid["pid"] is not None:
        sender._worker_pid["pid"] = None
        running = sender.running()
        if running is not None:
            running.stop()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.stop()


@pytest.fixture
def other_receiver():
    r = Receiver()
    yield r
    r.stop()


@pytest.fixture
def subscribe(db):
    """``subscribe(receiver, ["article.created"], scope="t1")``: a webhook to ``receiver``."""

    def make(receiver, events=(), **fields):
        if not events and "all_events" not in fields:
            fields["all_events"] = True
        return SubscriptionFactory(url=receiver.url, events=list(events), **fields)

    return make


def pytest_report_header(config):
    db = os.environ.get("DATABASE_URL", "sqlite (default)")
    broker = "redis" if os.environ.get("REDIS_URL") else "django-q2 ORM"
    return f"webhooks: database {db.split('@')[-1]}, broker {broker}"


@pytest.fixture
def no_plan_gate(settings):
    """For tests of free-form scopes ("acme", "t1"): the example's plan gate admits only the
    scopes of its Pro organisations (``org:<id>``), and would refuse these."""
    settings.WEBHOOKS_PLAN_GATE = None


@pytest.fixture
def commit(django_capture_on_commit_callbacks):
    """``with commit():`` runs a block as a committed host transaction: on-commit work runs."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def run_due(commit):
    """Run the sweeper as if ``after`` had passed: every due retry is sent (sync mode)."""
    from webhooks import sweeper

    def run(after=timedelta(days=30)):
        with commit():
            return sweeper.sweep_once(now=timezone.now() + after)

    return run


@pytest.fixture
def caught():
    """``caught(signal)`` → a list that fills with the kwargs of each send, until teardown."""
    connected = []

    def catch(signal):
        calls = []

        def receiver(**kwargs):
            calls.append(kwargs)

        signal.connect(receiver, weak=False)
        connected.append((signal, receiver))
        return calls

    yield catch
    for signal, receiver in connected:
        signal.disconnect(receiver)


# Real processes, browsers, fuzzing, chaos and benchmarks: the fast run (-m "not slow")
# leaves these out; CI runs them on the newest combination and on each database.
SLOW_MODULES = {
    "tests/admin/test_browser.py",
    "tests/admin/test_browser_layout.py",
    "tests/api/test_fuzz.py",
    "tests/docs/test_fresh_install.py",
    "tests/example/test_demo_end_to_end.py",
    "tests/portal/test_browser_secrets.py",
    "tests/portal/test_browser_webhooks.py",
    "tests/portal/test_portal_browser.py",
    "tests/portal/test_browser_deliveries.py",
    "tests/reliability/test_chaos.py",
    "tests/reliability/test_noisy_neighbours.py",
    "tests/reliability/test_outbox_broker_cluster.py",
    "tests/reliability/test_sender.py",
    "tests/test_bench_purge.py",
    "tests/test_bench_smoke.py",
    "tests/test_serve.py",
}


#: Slow modules whose outcome depends on neither the suite's database nor its Python and
#: Django versions (the fresh install builds its own virtualenv on SQLite; the benchmarks'
#: smoke runs choose their own backends). CI runs each in some of its steps and names it in
#: WEBHOOKS_TESTS_RUN_ELSEWHERE (comma-separated keys) in the others.
RUN_ONCE = {
    "fresh_install": "tests/docs/test_fresh_install.py",
    "bench_smoke": "tests/test_bench_smoke.py",
}


def pytest_collection_modifyitems(config, items):
    elsewhere = {
        RUN_ONCE[key]
        for key in os.environ.get("WEBHOOKS_TESTS_RUN_ELSEWHERE", "").split(",")
        if key in RUN_ONCE
    }
    for item in items:
        module = item.nodeid.split("::")[0]
        if module in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
        if module in elsewhere:
            item.add_marker(pytest.mark.skip(reason="run in another step of CI"))


@pytest.fixture
def name_servers_never_answer(monkeypatch):
    """``slow-dns.example`` resolves only when the test ends (to 127.0.0.1): its name
    servers never answer meanwhile, as a receiver's own can. (A resolver's silence is what
    a server on 127.0.0.1 cannot give this process: its lookups go to the system's.)"""
    released = threading.Event()
    real = socket.getaddrinfo

    def lookup(host, *args, **kwargs):
        if host == "slow-dns.example":
            released.wait(30)
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    yield "slow-dns.example"
    released.set()
