"""Enqueues handed to a background thread, so no host request waits on a network broker.

After a commit the host only puts the new event's id in an in-memory queue. One daemon
thread per process takes what has gathered there, up to ``WEBHOOKS_BATCH_SIZE`` ids at
a time, and enqueues one task for them (``outbox.enqueue``: never raises, skips a broker
that just failed). A process that forks gets a new thread in the child. At interpreter
exit the queue is flushed for a moment; whatever is lost (a process killed, a broker
that never answers) keeps an empty ``fanned_out_at`` and the sweeper fans it out.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import time
from collections.abc import Callable

from django.db import close_old_connections

from .conf import conf

logger = logging.getLogger("webhooks")

#: Ids held at most while the broker is slow; beyond that they are left to the sweeper,
#: so a broker that hangs cannot make a web process grow without bound.
MAX_WAITING = 10_000
#: Seconds the exit flush waits for the thread to push what is queued.
EXIT_FLUSH_SECONDS = 2.0
#: A push less than this many seconds after the previous one is part of a burst: it waits
#: up to ``LINGER`` seconds for more ids to go in the same task. Each task costs a worker a
#: fan-out transaction and a recording group of its own: at 200 saves/s, 25 ms gathers ~5
#: saves a task (10 ms gathered 2–3, 2 ms one), a tenth less worker CPU per delivery than
#: 10 ms, for ~10 ms more from commit to arrival at those rates (docs/benchmarks.md, "Issue
#: 23: CPU per delivery"). Saves further apart than the window (under 100 a second) go at once.
BURST_WINDOW = 0.01
LINGER = 0.025


class Handoff:
    """A per-process background sender of ``send(batch)`` calls for submitted items."""

    def __init__(
        self, send: Callable[[list], object], name: str, prepare: Callable[[], object] | None = None
    ) -> None:
        self.send = send
        self.name = name
        self.prepare = prepare  # run by the thread when it starts, before its first send
        self._forget()
        if hasattr(os, "register_at_fork"):
            # The child has no thread and perhaps a lock held by a thread that is gone.
            os.register_at_fork(after_in_child=self._forget)
        atexit.register(self.flush, EXIT_FLUSH_SECONDS)

    def _forget(self) -> None:
        self._lock = threading.Lock()
        self._pid = None
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._idle = threading.Condition()
        self._waiting = 0  # submitted and not yet sent (or given up)

    def start(self) -> None:
        """Start this process's thread if it is not running: call it when an item is on its
        way (e.g. in the transaction that will submit it), so ``prepare`` runs meanwhile."""
        if self._pid != os.getpid():
            self._start()

    def submit(self, item) -> bool:
        """Queue ``item`` for the thread; False (left to the sweeper) if too many wait."""
        self.start()
        with self._idle:
            if self._waiting >= MAX_WAITING:
                logger.warning(
                    "%s: %d waiting; %r left to the sweeper.", self.name, MAX_WAITING, item
                )
                return False
            self._waiting += 1
        self._queue.put(item)
        return True

    def flush(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until everything submitted has been sent."""
        if self._pid != os.getpid():
            return True  # nothing submitted in this process
        with self._idle:
            return self._idle.wait_for(lambda: self._waiting == 0, timeout)

    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            thread.start()
            self._pid = os.getpid()

    def _run(self) -> None:
        if self.prepare is not None:
            try:
                self.prepare()
            except Exception:  # noqa: BLE001 - the first send does it then, or fails alone
                logger.info("%s: could not prepare.", self.name, exc_info=True)
        last_send = float("-inf")
        while True:
            batch = [self._queue.get()]
            size = max(1, conf.BATCH_SIZE)
            # In a burst (the last push was moments ago) wait a little for more ids, so a
            # busy process pushes one task per few saves; an isolated save goes at once.
            burst = time.monotonic() - last_send < BURST_WINDOW
            until = time.monotonic() + (LINGER if burst else 0.0)
            while len(batch) < size:
                try:
                    left = until - time.monotonic()
                    batch.append(
                        self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait()
                    )
                except queue.Empty:
                    break
            last_send = time.monotonic()
            try:
                self.send(batch)
            except Exception:  # noqa: BLE001 - the thread must outlive any failure
                logger.exception("%s: could not send %d items.", self.name, len(batch))
            finally:
                with self._idle:
                    self._waiting -= len(batch)
                    self._idle.notify_all()
                close_old_connections()  # this thread's own, if the broker used any
