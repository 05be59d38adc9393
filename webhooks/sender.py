"""The worker process's sender: a slow receiver costs a socket, not a worker.

A django-q2 task that sent its deliveries itself would return only when its slowest
request ended, so one silent receiver held a whole worker for its deadline. In a worker
process, tasks instead hand their claimed deliveries (leased, with their token) to this
process's sender and return at once. One coordinator thread turns the same sending loop
as the synchronous path (``dispatch.SendLoop``): up to ``WEBHOOKS_MAX_IN_FLIGHT`` requests
in a pool of small-stack threads, and the per-endpoint cap. Its database work is another
thread's (``Recorder``, with its own connection): recording outcomes in groups, giving back
what it will not send, claiming due work. So the coordinator never waits for the database,
and what tasks hand over starts while a big group is recorded. The coordinator is also
this process's clock for work that becomes due later (``wakeups``): at the earliest
registered time it has what is due claimed and sends it.

- Backpressure: a task waits only while this process already has ``MAX_IN_FLIGHT``
  deliveries queued, in flight or not recorded yet.
- A lane for healthy webhooks: deliveries of failing webhooks (a failure streak, or here
  a request that failed or has taken over ``dispatch.SLOW_AFTER`` seconds) fill at
  most ``FAILING_SHARE`` of ``MAX_IN_FLIGHT``. Beyond it a task gives them back, still
  due, without waiting, and due work is claimed only up to that share: what failing
  receivers owe waits in the database, and a healthy webhook's delivery never queues
  behind it. In a turn, healthy webhooks' requests start first, all of them, then failing
  ones' for at most ``dispatch.START_BUDGET`` seconds.
- A delivery whose request could not end within its lease is given back, still due.
- Nothing is lost if the process dies: its leases run out and the sweeper resends.
- The hourly success counts of what it records are written once a second
  (``health_hours.deferred``), not once per group: only the figures may lag.
- At exit (recycle, SIGTERM) nothing new starts, queued deliveries of healthy webhooks
  are handed to another worker through the broker's queue and the others given back, the
  requests in flight get ``EXIT_GRACE`` seconds to end, the rest are given back too (sent
  again later with the same webhook-id: at least once), and what ended gets
  ``RECORDING_GRACE`` seconds more to be recorded.

Used only in a django-q2 worker process (``mark_worker_process``, from its ``post_spawn``)
outside sync mode and outside a transaction: everywhere else the caller sends and records
synchronously (a background thread could not see a transaction's uncommitted rows).
"""

from __future__ import annotations

import heapq
import logging
import math
import os
import queue
import threading
import time
from datetime import datetime, timedelta
from multiprocessing.util import Finalize

from django.db import close_old_connections, connection
from django.utils import timezone

from . import deadline
from .conf import conf
from .models import DeliveryAttempt

logger = logging.getLogger("webhooks")

#: Seconds the requests in flight get to end when the process stops.
EXIT_GRACE = 3.0
#: Seconds more for recording what ended, then.
RECORDING_GRACE = 1.5
#: Stack of each request thread: a request needs little, and hundreds of threads are kept.
THREAD_STACK_SIZE = 512 * 1024
#: Seconds between the coordinator's checks of its database connection when idle.
CONNECTION_CHECK = 1.0
#: Share of ``MAX_IN_FLIGHT`` that failing webhooks' deliveries and the coordinator's own
#: claims of due work may fill; the rest is kept for what tasks hand over for healthy ones.
FAILING_SHARE = 0.75
#: Seconds after a claim of due work the database refused before the next try.
CLAIM_RETRY = 1.0

_worker_pid = {"pid": None}
_lock = threading.Lock()
_current: dict = {}


def mark_worker_process() -> None:
    """This process is a django-q2 worker (its ``post_spawn``): tasks may hand off here."""
    _worker_pid["pid"] = os.getpid()


def usable() -> bool:
    """May a task hand deliveries to this process's sender rather than send them itself?"""
    from django_q.conf import Conf

    return (
        _worker_pid["pid"] == os.getpid()
        and not Conf.SYNC
        and not connection.in_atomic_block
        and conf.MAX_IN_FLIGHT > 0
    )


def get() -> Sender:
    """This process's sender, started on first use and made again after a fork."""
    with _lock:
        sender = _current.get("sender")
        # A sender that is stopping (the process exits) stays: it gives back what it gets.
        if sender is None or sender.pid != os.getpid() or not sender._thread.is_alive():
            sender = _current["sender"] = Sender()
            sender.start()
        return sender


def running() -> Sender | None:
    """This process's sender if it runs (a worker that has sent something), else None."""
    sender = _current.get("sender")
    if sender is not None and sender.pid == os.getpid() and sender.alive():
        return sender
    return None


class _Pool:
    """Request threads (daemons, small stacks), started as needed up to ``size``.

    Daemons, unlike ``ThreadPoolExecutor``'s: a request still running when the process
    exits does not hold the exit (it has been given back by then)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._threads = 0
        self._outstanding = 0  # jobs submitted and not finished: one thread each, at most
        self._lock = threading.Lock()

    def submit(self, fn, *args) -> _Job:
        future = _Job(fn, args)
        self._jobs.put(future)
        with self._lock:
            self._outstanding += 1
            if self._outstanding <= self._threads or self._threads >= self.size:
                return future
            self._threads += 1
        with _stack_lock:
            previous = threading.stack_size(THREAD_STACK_SIZE)
            try:
                threading.Thread(target=self._work, name="webhooks-send", daemon=True).start()
            finally:
                threading.stack_size(previous)
        return future

    def _work(self) -> None:
        while True:
            self._jobs.get().run()
            with self._lock:
                self._outstanding -= 1


_stack_lock = threading.Lock()


class _Job:
    """A request handed to the pool: what the loop asks of a ``concurrent.futures.Future``
    (``done``, ``result``, a callback once done) without its ``Condition``, which cost a
    request more than the rest of its hand-over."""

    __slots__ = ("_fn", "_args", "_value", "_error", "_done", "_callbacks")

    def __init__(self, fn, args) -> None:
        self._fn, self._args = fn, args
        self._value = self._error = None
        self._done = False
        self._callbacks: list | None = []

    def run(self) -> None:
        try:
            self._value = self._fn(*self._args)
        except BaseException as exc:  # noqa: BLE001 - handed to the coordinator
            self._error = exc
        with _callbacks_lock:
            self._done = True
            callbacks, self._callbacks = self._callbacks, None
        for callback in callbacks:
            _call(callback, self)

    def done(self) -> bool:
        return self._done

    def result(self):
        if self._error is not None:
            raise self._error
        return self._value

    def add_done_callback(self, callback) -> None:
        """Call ``callback(job)`` once it is done: now, if it is."""
        with _callbacks_lock:
            if not self._done:
                self._callbacks.append(callback)
                return
        _call(callback, self)


_callbacks_lock = threading.Lock()


def _call(callback, job: _Job) -> None:
    try:
        callback(job)
    except Exception:  # noqa: BLE001 - a request thread outlives its callbacks
        logger.exception("A webhooks request's callback failed.")


class Sender:
    def __init__(self) -> None:
        from .dispatch import SendLoop

        self.pid = os.getpid()
        self.limit = max(1, conf.MAX_IN_FLIGHT)
        self.failing_limit = max(1, int(self.limit * FAILING_SHARE))
        self.loop = SendLoop(self.limit, _Pool(self.limit).submit)
        self.recorder = self.loop.recorder = Recorder(self.loop.woken)
        self._cond = threading.Condition()
        self._inbox: list[tuple] = []  # (deliveries, token, trigger, start_by), from tasks
        self._queued = 0  # deliveries in the inbox
        self._load = 0  # deliveries in the loop (waiting or in flight), as last counted
        self._wakeups: list[float] = []  # a heap of time.monotonic() instants
        self._wakeup_set: set[float] = set()  # the same instants, to add each once
        self._stopping = False
        self._claiming = False  # a claim of due work is handed to the recorder
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="webhooks-sender", daemon=True)
        self._finalizer = None

    def start(self) -> None:
        self.recorder.start()
        self._thread.start()
        # Runs when the worker process exits normally (django-q2's recycle or stop).
        self._finalizer = Finalize(self, self.stop, exitpriority=10)

    def alive(self) -> bool:
        return self._thread.is_alive() and not self._stopping

    # -- from tasks -------------------------------------------------------------------

    def submit(self, deliveries, token, trigger) -> None:
        """Hand claimed deliveries over and return; waits only while this process is full."""
        # The coordinator's and the recorder's own claims never wait for room.
        own = threading.current_thread() is self._thread or self.recorder.is_this_thread()
        # A person's resend goes now, whatever the webhook's state.
        if not own and trigger == DeliveryAttempt.Trigger.AUTOMATIC:
            deliveries = self._within_failing_share(deliveries, token)
        if not deliveries:
            return
        start_by = min(_start_by(d) for d in deliveries)
        with self._cond:
            while (
                not own
                and not self._stopping
                and self._queued + self._load >= self.limit
                and time.monotonic() < start_by
            ):
                self._cond.wait(0.5)
            if self._stopping or time.monotonic() >= start_by:
                full = True
            else:
                full = False
                self._inbox.append((list(deliveries), token, trigger, start_by))
                self._queued += len(deliveries)
        if full:  # stopping, or full for the whole lease: still due, sent later
            from .dispatch import _release

            _release(deliveries, token)
            return
        self.loop.woken.set()

    def _within_failing_share(self, deliveries, token) -> list:
        """The deliveries a task may hand over now: failing webhooks' only while the process
        holds fewer than ``failing_limit``; the others are given back, still due, for the
        coordinator to claim when there is room (never a task waiting for them)."""
        of_failing = [d for d in deliveries if self.loop.failing(d)]
        if not of_failing:
            return list(deliveries)
        with self._cond:
            room = max(0, self.failing_limit - self._queued - self._load)
        if room >= len(of_failing):
            return list(deliveries)
        from .dispatch import _release

        over = of_failing[room:]
        _release(over, token)
        self.wake_at(timezone.now())
        given_back = {d.pk for d in over}
        return [d for d in deliveries if d.pk not in given_back]

    def wake_at(self, when: datetime) -> None:
        """Claim what is due at ``when`` (a retry, a postponed delivery) then."""
        at = time.monotonic() + (when - timezone.now()).total_seconds()
        # Rounded up to a quarter second, once each: the clock is as good, and a busy
        # process keeps one entry per instant, not one per retry.
        at = math.ceil(at * 4) / 4
        with self._cond:
            if at in self._wakeup_set:
                return
            self._wakeup_set.add(at)
            heapq.heappush(self._wakeups, at)
        self.loop.woken.set()

    def stop(self) -> None:
        """Stop at exit: see the module's docstring. Returns within ``EXIT_GRACE`` + 2 s."""
        with self._cond:
            if self._stopping:
                return
            self._stopping = True
            self._cond.notify_all()
        self.loop.woken.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._stopped.wait(EXIT_GRACE + 2)

    # -- the coordinator thread ---------------------------------------------------------

    def _run(self) -> None:
        checked = time.monotonic()
        try:
            while not self._stopping:
                try:
                    self._turn()
                except Exception:  # noqa: BLE001 - the sender must outlive any one error
                    logger.exception("The webhooks sender hit an error; going on.")
                    _fresh_connection()
                    time.sleep(0.1)
                if time.monotonic() - checked > CONNECTION_CHECK:
                    _fresh_connection()
                    checked = time.monotonic()
                    if len(self.loop.warned) > 1000:  # logged once per webhook, for a while
                        self.loop.warned.clear()
            self._finish()
        finally:
            connection.close()
            self._stopped.set()

    def _turn(self) -> None:
        with self._cond:
            # Taken deliveries still count until the loop says how many it holds.
            self._load += self._queued
            taken, self._inbox, self._queued = self._inbox, [], 0
            due = bool(self._wakeups) and self._wakeups[0] <= time.monotonic()
            while self._wakeups and self._wakeups[0] <= time.monotonic():
                self._wakeup_set.discard(heapq.heappop(self._wakeups))
            next_wakeup = self._wakeups[0] if self._wakeups else None
        for deliveries, token, trigger, start_by in taken:
            self.loop.add(deliveries, token, trigger, start_by=start_by)
        if due and not self._claiming:
            self._claiming = True
            self.recorder.run_soon(self._claim_due)
        longest = CONNECTION_CHECK
        if next_wakeup is not None:
            longest = max(0.0, min(longest, next_wakeup - time.monotonic()))
        if self.loop.idle():
            self.loop.woken.wait(longest)
            self.loop.woken.clear()
        else:
            self.loop.step(longest)
        with self._cond:
            self._load = self.loop.load()
            self._cond.notify_all()

    def _claim_due(self) -> None:
        """Claim due deliveries, as many as the failing share has room for, and send them
        here: most due work is failing webhooks' (retries, given back), and the rest of
        ``MAX_IN_FLIGHT`` stays free for what tasks hand over. In the recorder's thread."""
        try:
            self._claim_within_share()
        except Exception:
            # The instant that asked for this claim is spent: without a new one, due work
            # would wait for the next retry's instant or for the sweeper.
            self.wake_at(timezone.now() + timedelta(seconds=CLAIM_RETRY))
            raise  # logged by the recorder, which takes a fresh connection
        finally:
            self._claiming = False

    def _claim_within_share(self) -> None:
        from . import dispatch, outbox

        with self._cond:
            room = self.failing_limit - self._load - self._queued
        batch = max(1, conf.BATCH_SIZE)
        while room > 0 and not self._stopping:
            token, ids = outbox.claim_due(min(batch, room))
            if not ids:
                return
            # The same path as a task's: lease renewal skipped, gates applied, then handed
            # to this sender (``submit`` from this thread does not wait).
            dispatch.send_claimed(ids, token, renew=False, background=True)
            room -= len(ids)
            if len(ids) < min(batch, room + len(ids)):
                return
        # Full: more may be due; come back for it soon (the coordinator, perhaps waiting
        # for a second, is woken to take the new instant into account).
        with self._cond:
            heapq.heappush(self._wakeups, time.monotonic() + 0.2)
        self.loop.woken.set()

    def _finish(self) -> None:
        """The process stops: hand on (``_hand_on``) or give back what is queued, let the
        requests in flight end for ``EXIT_GRACE`` seconds, record them, give back the rest."""
        self.loop.starting = False
        with self._cond:
            taken, self._inbox = self._inbox, []
        try:
            for deliveries, token, trigger, start_by in taken:
                self.loop.add(deliveries, token, trigger, start_by=start_by)
            from .dispatch import _release_items

            waiting = self.loop.take_waiting()
            given_back = _hand_on(waiting, self.loop.failing)
            _release_items(given_back)
            until = time.monotonic() + EXIT_GRACE
            while self.loop.in_flight and time.monotonic() < until:
                self.loop.step(max(0.01, until - time.monotonic()))
            cut = self.loop.give_back_in_flight()
            # What ended is recorded before the process goes (or, if the database is too
            # slow for that, its leases run out and it is sent again: at least once).
            until += RECORDING_GRACE
            while self.loop.unrecorded and time.monotonic() < until:
                self.loop.step(0.05)  # handed to the recorder as soon as it is free
            self.recorder.stop(max(0.0, until - time.monotonic()))
            if waiting or cut:
                logger.info(
                    "Worker stopping: %d queued deliveries handed on, %d queued and %d "
                    "unfinished deliveries given back.",
                    len(waiting) - len(given_back),
                    len(given_back),
                    cut,
                )
            deadline.expire_all()  # the unfinished requests end now, their threads with them
        except Exception:  # noqa: BLE001 - leases and the sweeper cover whatever is left
            logger.exception("The webhooks sender could not stop cleanly.")


class Recorder:
    """The sender's database thread: records what its requests ended with, gives back
    what it will not send and claims due work, with a connection of its own. With hundreds
    of requests in flight a group takes a busy process seconds to record, and a claim or a
    give-back waits its turn at a loaded database: the coordinator meanwhile starts what
    tasks hand over. One group at a time; the loop gathers the next while this one is
    recorded. Other work (``run_soon``) goes first, in order."""

    def __init__(self, woken: threading.Event) -> None:
        self._woken = woken  # the loop's: set when a group is recorded
        self._cond = threading.Condition()
        self._group: list | None = None
        self._jobs: list = []
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="webhooks-recorder", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def is_this_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def busy(self) -> bool:
        return self._group is not None

    def held(self) -> int:
        """Outcomes handed over and not recorded yet."""
        group = self._group
        return len(group) if group is not None else 0

    def record(self, ended_requests: list) -> None:
        with self._cond:
            if self._group is not None:
                raise RuntimeError("The recorder is still recording a group.")
            self._group = list(ended_requests)
            self._cond.notify_all()

    def run_soon(self, job) -> None:
        """Run ``job()`` in this thread, before the next group."""
        with self._cond:
            self._jobs.append(job)
            self._cond.notify_all()

    def stop(self, wait: float) -> None:
        """Run what is handed over, then stop; wait at most ``wait`` seconds for it."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(wait)

    def _run(self) -> None:
        from . import health_hours
        from .dispatch import record_ended

        health_hours.deferred()  # this thread's groups' counts, written once a second
        checked = flushed = time.monotonic()
        try:
            while True:
                with self._cond:
                    if self._group is None and not self._jobs and not self._stopping:
                        self._cond.wait(CONNECTION_CHECK)
                    jobs, self._jobs = self._jobs, []
                    group, stopping = self._group, self._stopping
                for job in jobs:
                    self._run_safely(job)
                if group is not None:
                    self._run_safely(lambda group=group: record_ended(group))
                    with self._cond:
                        self._group = None
                    self._woken.set()
                if time.monotonic() - flushed >= health_hours.FLUSH_EVERY or stopping:
                    _flush_health()
                    flushed = time.monotonic()
                if stopping and group is None and not jobs:
                    return
                if time.monotonic() - checked > CONNECTION_CHECK:
                    _fresh_connection()
                    checked = time.monotonic()
        finally:
            connection.close()

    def _run_safely(self, job) -> None:
        try:
            job()  # a recording isolates what the database refuses, and logs it
        except Exception:  # noqa: BLE001 - leases run out, the sweeper resends
            logger.exception("The webhooks sender's database work failed; going on.")
            _fresh_connection()


def _flush_health() -> None:
    from . import health_hours

    try:
        health_hours.flush()
    except Exception:  # noqa: BLE001 - kept for the next flush; figures only
        logger.warning("The webhooks sender could not write its health counts.", exc_info=True)
        _fresh_connection()


def _fresh_connection() -> None:
    try:
        if not connection.in_atomic_block:
            close_old_connections()
    except Exception:  # noqa: BLE001 - the next query reconnects, or fails and is logged
        logger.warning("The webhooks sender could not check its connection.", exc_info=True)


def _hand_on(items, failing) -> list:
    """Hand the queued deliveries of healthy webhooks to another worker through the broker's
    queue, under their lease (django-q2 recycles a worker every ``recycle`` tasks): given
    back to the database, they would wait behind every due delivery of failing webhooks.
    Returns the items left to give back."""
    from . import outbox

    rest, groups = [], {}
    for item in items:
        if failing(item.delivery):
            rest.append(item)
        else:
            groups.setdefault((item.token, item.trigger), []).append(item)
    for (token, trigger), group in groups.items():
        ids = [str(item.delivery.pk) for item in group]
        if not outbox.enqueue("webhooks.tasks.deliver", ids, str(token), trigger):
            rest.extend(group)
    return rest


def failing(delivery) -> bool:
    """Is the delivery's webhook failing (its last attempts failed)? As loaded with it."""
    return bool(getattr(delivery.subscription, "consecutive_failures", 0))


def _start_by(delivery) -> float:
    """The latest time.monotonic() at which the delivery's request may start and still end
    (and be recorded) within its lease."""
    leased_until = getattr(delivery, "leased_until", None)
    lease_left = (
        (leased_until - timezone.now()).total_seconds()
        if leased_until is not None
        else conf.LEASE_SECONDS
    )
    needed = conf.TIMEOUT + deadline.MARGIN + deadline.RECORDING_ALLOWANCE
    return time.monotonic() + lease_left - needed
