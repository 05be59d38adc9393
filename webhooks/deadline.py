"""A total deadline for one HTTP request, whatever the receiver does.

Socket timeouts bound each read, not the request: a receiver that drips one byte a
second (in its headers or its body) never trips them. So every request registers the
sockets it uses (when a connection connects, and when a request starts on a kept-alive
one) with one watchdog thread, which shuts them down when the request's deadline
passes; the blocked read then returns at once and the request ends as a timeout. The
watchdog holds a descriptor of its own for each socket (a dup): http.client lets go of
a connection's socket as soon as an answer says the connection will close
(``Connection: close``, HTTP/1.0) while the body is still read from it, and shutting
down the kernel socket through any descriptor ends a read on another, a TLS read too.
Those descriptors are closed when the request ends. The watchdog acts within ``TICK``
(10 ms) of the deadline; ``MARGIN`` is what the library promises on top of
``WEBHOOKS_TIMEOUT`` (closing, classifying).
"""

from __future__ import annotations

import heapq
import itertools
import os
import socket
import threading
import time
from contextlib import contextmanager

#: Seconds a request may last beyond ``WEBHOOKS_TIMEOUT`` (documented in the README).
MARGIN = 0.5
#: Seconds a lease keeps free after the last request to record its outcome.
RECORDING_ALLOWANCE = 1.0
#: Seconds the watchdog sleeps at least between two looks: a deadline fires at most this late.
TICK = 0.01

_local = threading.local()


class RequestDeadline:
    """The deadline of the request running in this thread, and the sockets it uses."""

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds
        self.expired = False
        self._sockets: list[socket.socket] = []  # the watchdog's own descriptors
        self._lock = threading.Lock()
        self._done = False

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())

    def watch(self, sock: socket.socket) -> None:
        """Shut ``sock`` down if the request is still running at the deadline."""
        with self._lock:
            if self._done:
                return
            try:
                # Our own descriptor: whoever closes theirs, it stays valid and can never
                # name another socket, until ``finish`` closes it.
                own = socket.fromfd(sock.fileno(), sock.family, sock.type)
            except OSError:
                return  # closed already: nothing left to interrupt
            self._sockets.append(own)
            if self.expired:  # registered after the watchdog fired
                _shut_down(own)

    def _fire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            for own in self._sockets:
                _shut_down(own)

    def finish(self) -> None:
        with self._lock:
            self._done = True
            for own in self._sockets:
                own.close()
            self._sockets.clear()


def _shut_down(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # the receiver has closed it already: nothing left to interrupt


class _Watchdog:
    """One thread per process that fires the deadlines of the requests in flight."""

    def __init__(self) -> None:
        self._heap: list = []
        self._counter = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._pid = None

    def add(self, deadline: RequestDeadline) -> None:
        with self._wake:
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._heap = []
                self._pid = os.getpid()
                self._thread = threading.Thread(
                    target=self._run, name="webhooks-deadline", daemon=True
                )
                self._thread.start()
            # The watchdog sleeps until the earliest deadline: wake it only when this one
            # comes first. Requests share one timeout, so nearly none does, and a request
            # costs no thread switch (a wake-up each was a quarter of a request's CPU).
            first = not self._heap or deadline.at < self._heap[0][0]
            heapq.heappush(self._heap, (deadline.at, next(self._counter), deadline))
            if first:
                self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._heap:
                    self._wake.wait()
                now = time.monotonic()
                due = []
                while self._heap and self._heap[0][0] <= now:
                    due.append(heapq.heappop(self._heap)[2])
                if not due:
                    # Never less than TICK: the deadlines of requests a moment apart are
                    # handled together, not with a wake-up each.
                    self._wake.wait(max(self._heap[0][0] - now, TICK))
                    continue
            for deadline in due:
                deadline._fire()  # a no-op for a request that has finished

    def expire_all(self) -> None:
        """Fire every deadline now: the requests in flight end at once (the process stops)."""
        with self._wake:
            pending = [entry[2] for entry in self._heap] if self._pid == os.getpid() else []
            self._heap = []
        for deadline in pending:
            deadline._fire()


_watchdog = _Watchdog()


def expire_all() -> None:
    _watchdog.expire_all()


@contextmanager
def request_deadline(seconds: float):
    """Run one request in this block: its connection is cut ``seconds`` from now."""
    deadline = RequestDeadline(seconds)
    _local.current = deadline
    _watchdog.add(deadline)
    try:
        yield deadline
    finally:
        deadline.finish()
        _local.current = None


def current() -> RequestDeadline | None:
    return getattr(_local, "current", None)
