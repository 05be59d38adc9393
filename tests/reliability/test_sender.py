"""The worker's sender on a real cluster: retries keep their schedule, and a stopping
cluster neither waits for a slow receiver nor loses what was in flight.

SQLite + the outbox broker, or PostgreSQL + Redis when the suite runs on them
(``DATABASE_URL`` and ``REDIS_URL``).
"""

from __future__ import annotations

import os
import signal
import statistics
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from bench.harness import Backend, Processes, host, wait_until
from tests.reliability.test_chaos import admin_url

ON_POSTGRES = os.environ.get("DATABASE_URL", "").startswith("postgres") and bool(
    os.environ.get("REDIS_URL")
)
SENDER_WEBHOOKS = {
    "RETRY_SCHEDULE": [1, 1, 1],
    "RETRY_JITTER": 0,
    "TIMEOUT": 8.0,
    "LEASE_SECONDS": 12,
    "FAN_OUT_GRACE": 2,
    # The sweeper polls far too rarely to keep a 1 s schedule: only the wake-ups can.
    "POLL_INTERVAL": 30,
    "SWEEP_DURATION": 20,
}
SENDER_Q_CLUSTER = {"timeout": 30, "retry": 60, "queue_limit": 4}


class TimedReceiver:
    """Logs when each request arrived (by webhook-id); answers ``status``, after ``hold``
    seconds for the first ``held`` requests."""

    def __init__(self, status: int = 500, hold: float = 0.0, held: int = 0) -> None:
        self.status, self.hold, self.held = status, hold, held
        self.arrivals: dict[str, list[float]] = defaultdict(list)
        self.count = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                arrived = time.monotonic()
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    receiver.arrivals[self.headers["webhook-id"]].append(arrived)
                    receiver.count += 1
                    wait = receiver.hold if receiver.count <= receiver.held else 0
                time.sleep(wait)
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _backend() -> Backend:
    kwargs = {"webhooks": SENDER_WEBHOOKS, "q_cluster": SENDER_Q_CLUSTER}
    if ON_POSTGRES:  # a database of its own on that server, and the suite's Redis
        kwargs.update(redis_url=os.environ["REDIS_URL"], admin_url=admin_url())
    backend = Backend("postgres" if ON_POSTGRES else "sqlite", **kwargs)
    backend.create()
    return backend


def test_retries_start_within_a_second_of_their_due_time(capsys):
    events = 30
    receiver = TimedReceiver(status=500)
    backend = _backend()
    try:
        with Processes(backend.tmp, grace=10) as p:
            env = backend.env()
            host(env, "subscribe", receiver.url)
            p.qcluster(env)
            host(env, "create", "--n", str(events), "--rate", "10")
            tries = len(SENDER_WEBHOOKS["RETRY_SCHEDULE"]) + 1
            done = wait_until(
                lambda: (
                    len(receiver.arrivals) == events
                    and all(len(times) >= tries for times in receiver.arrivals.values())
                ),
                120,
                0.25,
            )
    finally:
        receiver.stop()
        backend.drop()
    assert done, {k: len(v) for k, v in receiver.arrivals.items()}
    # Due 1 s after the previous attempt ended (no jitter); the previous answer is instant.
    late = sorted(
        later - earlier - 1.0
        for times in receiver.arrivals.values()
        for earlier, later in zip(times, times[1:], strict=False)
    )
    p99 = late[int(len(late) * 0.99) - 1]
    with capsys.disabled():
        print(
            f"\nretry lateness [{backend.label}] over {len(late)} retries: "
            f"median {statistics.median(late):.3f} s, p99 {p99:.3f} s, max {late[-1]:.3f} s"
        )
    assert late[0] > -0.05, "a retry came before it was due"
    assert p99 <= 1.0


def test_a_stopping_cluster_does_not_wait_for_a_slow_receiver_and_loses_nothing(capsys):
    # The first request is held for 20 s (longer than the timeout): it is in flight when the
    # cluster is told to stop, is given back, and is sent again (same webhook-id) later.
    receiver = TimedReceiver(status=204, hold=20, held=1)
    backend = _backend()
    try:
        with Processes(backend.tmp, grace=10) as p:
            env = backend.env()
            host(env, "subscribe", receiver.url)
            cluster = p.qcluster(env)
            host(env, "create", "--n", "1")
            assert wait_until(lambda: receiver.count >= 1, 60, 0.1), "nothing was sent"
            time.sleep(0.5)
            stopping = time.monotonic()
            cluster.send_signal(signal.SIGTERM)
            cluster.wait(timeout=60)
            took = time.monotonic() - stopping
            with capsys.disabled():
                print(f"\nqcluster stopped {took:.1f} s after SIGTERM with a request in flight")
            assert took < 10
            assert host(env, "status")["deliveries"].get("pending") == 1
            # Given back at exit, not left leased (12 s): the sweeper's first poll, at its
            # start (the next is 30 s later), finds it due, and a new cluster sends it.
            p.qcluster(env, name="qcluster-again")
            p.sweeper(env, duration=30)
            assert wait_until(lambda: receiver.count >= 2, 15, 0.1), "not given back"
            assert wait_until(
                lambda: host(env, "status")["deliveries"].get("succeeded") == 1, 30, 0.5
            )
    finally:
        receiver.stop()
        backend.drop()
    [(webhook_id, arrivals)] = receiver.arrivals.items()  # one message, sent again
    assert len(arrivals) == 2
