"""With a network broker (Redis), no host request waits on the network.

After the commit the host only hands the event's id to a background thread of its
process, which enqueues ``process_events`` tasks for what has gathered. Tested against a
real misbehaving server: a TCP server on 127.0.0.1 posing as Redis that accepts and
never answers.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest
import redis
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django_q.brokers.redis_broker import Redis as RedisBroker
from django_q.conf import Conf
from django_q.signing import SignedPackage

from bench.harness import ROOT
from tests.testapp.models import Article
from webhooks import handoff as handoff_module
from webhooks import outbox
from webhooks.handoff import Handoff
from webhooks.models import Event

pytestmark = pytest.mark.django_db(transaction=True)

WAIT = 20  # seconds a test waits for something that should happen at once, at most


class SilentServer:
    """Accepts connections on 127.0.0.1 and never answers, until ``release()``; notes
    when a client gives up (closes its end)."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.accepted = threading.Event()
        self.given_up = threading.Event()
        self.released = threading.Event()
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.released.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            if self.released.is_set():
                conn.close()
                return
            self.held.append(conn)
            self.accepted.set()
            threading.Thread(target=self._read_until_closed, args=(conn,), daemon=True).start()

    def _read_until_closed(self, conn: socket.socket) -> None:
        try:
            while conn.recv(4096):
                pass  # the request: never answered
        except OSError:
            pass
        if not self.released.is_set():
            self.given_up.set()

    def holds_a_connection(self) -> bool:
        """A client is connected and still waiting for its answer."""
        return self.accepted.is_set() and not self.given_up.is_set()

    def release(self) -> None:
        self.released.set()
        self.listener.close()
        for conn in self.held:
            conn.close()


def redis_broker(url: str) -> RedisBroker:
    broker = RedisBroker.__new__(RedisBroker)
    broker.list_key = f"django_q:{Conf.CLUSTER_NAME}:q"
    broker.connection = redis.Redis.from_url(url)
    broker.cache = None
    broker._info = None
    return broker


@pytest.fixture
def network_broker(monkeypatch):
    """Real workers (not sync mode) behind a network broker: ``use(broker)``."""
    monkeypatch.setattr(Conf, "SYNC", False)
    monkeypatch.setattr(Conf, "ORM", None)
    monkeypatch.setattr(Conf, "BROKER_CLASS", None)
    outbox._broker["down_until"] = 0.0

    def use(broker):
        monkeypatch.setattr(outbox, "_get_broker", lambda: broker)

    yield use
    outbox._fan_out_handoff.flush(WAIT)
    outbox._broker["down_until"] = 0.0


def test_a_save_returns_while_the_broker_holds_the_connection_unanswered(network_broker):
    server = SilentServer()
    network_broker(redis_broker(f"redis://127.0.0.1:{server.port}/0"))
    # Without the background thread the first save would wait for the server until the
    # client gives up (or this releases it): too late for the assertion below.
    watchdog = threading.Timer(WAIT, server.release)
    watchdog.start()
    try:
        with transaction.atomic():
            Article.objects.create(title="first")
        assert server.accepted.wait(WAIT), "the enqueue never reached the server"
        with transaction.atomic():  # while the enqueue of the first is stuck
            Article.objects.create(title="second")
        assert server.holds_a_connection(), "a save waited for the silent broker"
    finally:
        watchdog.cancel()
        server.release()
    # Nothing the host sees failed; the events wait, unfanned, for the sweeper.
    assert Article.objects.count() == 2
    assert list(Event.objects.values_list("fanned_out_at", flat=True)) == [None, None]


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL")
def test_on_redis_a_save_is_one_insert_and_the_push_happens_in_the_background(network_broker):
    broker = redis_broker(os.environ["REDIS_URL"])
    broker.list_key = f"django_q:wh-test-handoff-{os.getpid()}:q"
    network_broker(broker)
    pushed_from = []
    real_enqueue = broker.enqueue

    def enqueue(task):
        pushed_from.append(threading.current_thread())
        return real_enqueue(task)

    broker.enqueue = enqueue
    try:
        with CaptureQueriesContext(connection) as captured, transaction.atomic():
            Article.objects.create(title="on redis")
        assert pushed_from == []  # the host's thread returned before any push
        verbs = [q["sql"].split()[0].upper() for q in captured.captured_queries]
        assert verbs[-1] == "COMMIT" and verbs.count("INSERT") == 2
        assert outbox._fan_out_handoff.flush(WAIT)
        [thread] = pushed_from
        assert thread is not threading.current_thread()
        task = SignedPackage.loads(broker.connection.lpop(broker.list_key))
        assert task["func"] == "webhooks.tasks.process_events"
        assert task["args"] == ([str(Event.objects.get().pk)],)
    finally:
        broker.connection.delete(broker.list_key)


def test_ids_that_gather_while_a_push_is_slow_go_out_together_up_to_the_batch_size(settings):
    settings.WEBHOOKS_BATCH_SIZE = 3
    sent, first_started, go_on = [], threading.Event(), threading.Event()

    def send(batch):
        sent.append(batch)
        first_started.set()
        go_on.wait(WAIT)

    handoff = Handoff(send, name="test-handoff")
    handoff.submit(1)
    assert first_started.wait(WAIT)
    for n in range(2, 7):
        handoff.submit(n)
    go_on.set()
    assert handoff.flush(WAIT)
    assert sent == [[1], [2, 3, 4], [5, 6]]


def test_in_a_burst_the_ids_of_the_next_moments_go_in_one_task(monkeypatch):
    # A busy process pushes one task per few saves (each task costs a worker a fan-out
    # and a recording of its own); the first save after a quiet spell goes at once.
    monkeypatch.setattr(handoff_module, "BURST_WINDOW", 30.0)
    monkeypatch.setattr(handoff_module, "LINGER", 2.0)
    sent = []
    handoff = Handoff(sent.append, name="burst")
    started = time.monotonic()
    handoff.submit(1)
    assert handoff.flush(WAIT)
    assert sent == [[1]]
    assert time.monotonic() - started < 2.0  # not held for the linger
    for n in range(2, 7):  # a burst: saves 20 ms apart
        handoff.submit(n)
        time.sleep(0.02)
    assert handoff.flush(WAIT)
    assert sent == [[1], [2, 3, 4, 5, 6]]


def test_a_forked_child_sends_through_a_thread_of_its_own():
    read_end, write_end = os.pipe()
    handoff = Handoff(lambda batch: os.write(write_end, repr(batch).encode()), name="fork")
    handoff.submit("parent")
    assert handoff.flush(WAIT)
    assert os.read(read_end, 100) == b"['parent']"
    pid = os.fork()
    if pid == 0:  # the child: no thread yet, until it submits
        try:
            handoff.submit("child")
            os._exit(0 if handoff.flush(WAIT) else 1)
        finally:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert os.read(read_end, 100) == b"['child']"


def test_what_is_queued_at_interpreter_exit_is_sent():
    script = textwrap.dedent(
        """
        import time
        import django
        from django.conf import settings
        settings.configure()
        django.setup()
        from webhooks.handoff import Handoff

        def send(batch):
            time.sleep(0.3)  # a broker round trip, slower than the interpreter's exit
            print("sent", batch, flush=True)

        handoff = Handoff(send, name="exit")
        handoff.submit("last words")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "sent ['last words']\n"


class RecordingBroker:
    """A broker that answers at once and notes what it was asked."""

    list_key = "django_q:wh-test-recording:q"

    def __init__(self) -> None:
        self.pinged = threading.Event()
        self.tasks: list[str] = []

    def ping(self) -> bool:
        self.pinged.set()
        return True

    def enqueue(self, task: str) -> str:
        self.tasks.append(task)
        return str(len(self.tasks))


def test_a_process_first_save_connects_the_broker_while_its_transaction_is_open(
    network_broker, monkeypatch
):
    broker = RecordingBroker()
    network_broker(broker)
    # The process's thread as a new web process has it: not started yet.
    real = outbox._fan_out_handoff
    fresh = Handoff(real.send, name="test-new-process", prepare=real.prepare)
    monkeypatch.setattr(outbox, "_fan_out_handoff", fresh)
    with transaction.atomic():
        Article.objects.create(title="first of its process")
        # Before the commit the thread is already connecting, so the first event does not
        # wait for a connection after it.
        assert broker.pinged.wait(WAIT), "the broker was first reached after the commit"
        assert broker.tasks == []
    assert fresh.flush(WAIT)
    [task] = broker.tasks
    assert SignedPackage.loads(task)["args"] == ([str(Event.objects.get().pk)],)


def test_a_broker_down_when_the_thread_starts_does_not_stop_its_sends():
    sent = []

    def prepare():
        raise ConnectionRefusedError("the broker is down")

    handoff = Handoff(sent.append, name="test-prepare-fails", prepare=prepare)
    handoff.submit("event")
    assert handoff.flush(WAIT)
    assert sent == [["event"]]
