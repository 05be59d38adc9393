"""The worker's side: send claimed deliveries and record what happened.

One sending loop (``SendLoop``): requests run in a bounded thread pool, round-robin over
endpoints, at most ``WEBHOOKS_MAX_CONCURRENCY_PER_ENDPOINT`` of them to one endpoint (one
URL), so one slow receiver cannot hold every slot. All database writes stay in the thread
that turns the loop, so it holds one connection whatever its concurrency; outcomes that
end close together are recorded together. In a django-q2 worker, tasks hand their
deliveries to the process's sender (``webhooks.sender``), which turns the loop in its own
thread, and return; elsewhere (sync mode, tests, a transaction) ``_send_all`` turns it in
the caller's thread, ``WEBHOOKS_MAX_CONCURRENCY`` requests at a time, until it is done.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from django.db import InterfaceError, OperationalError, connection, connections, transaction
from django.utils import timezone

from . import (
    deadline,
    health_hours,
    metrics,
    outbox,
    plans,
    ratelimit,
    responses,
    retries,
    sender,
    signals,
    tracing,
    wakeups,
)
from . import delivery as http
from .conf import conf
from .models import Delivery, DeliveryAttempt, Subscription
from .rows import fetch as fetch_rows
from .rows import insert_rows

logger = logging.getLogger("webhooks")

AUTOMATIC = DeliveryAttempt.Trigger.AUTOMATIC
MANUAL = DeliveryAttempt.Trigger.MANUAL


def process_event(event_id) -> None:
    """One event's on-commit task (tasks enqueued by earlier versions): see ``process_events``."""
    process_events([event_id])


@tracing.fan_out_task
def process_events(event_ids) -> None:
    """Fan events out and send their first attempts (the on-commit path).

    The deliveries are created leased to this task and sent at once, with the objects
    the fan-out loaded: nothing is read twice before the requests leave. Under load many
    of these tasks wait in the queue, so a task run by a worker also fans out up to
    ``WEBHOOKS_BATCH_SIZE`` other events still waiting (oldest first) and, once its own
    are sent, a batch of other due deliveries (retries): a burst goes out in batches and
    the later tasks find nothing left, which costs them one read. Deliveries past the
    first batch are handed to other workers as ``deliver`` tasks, so a wide fan-out is
    sent in parallel. Leases keep every delivery single-sent.

    In a worker with its sender (``webhooks.sender``), failing webhooks' deliveries are
    created due and left to the sender, which claims due work within its share for them,
    as are the other due deliveries: the batches hold healthy webhooks' only.
    """
    from .broker import workers_poll_outbox

    event_ids = list(event_ids)
    helping = _run_by_workers()  # inline (sync mode) there is no queue: the host's time
    if helping and not workers_poll_outbox() and not outbox.any_waiting(event_ids):
        # Taken with an earlier task's batch (most tasks of a burst): one read by primary
        # key, no transaction, no help. Whatever else waits has a task of its own coming,
        # and the sweeper finds any event or due delivery whose task was lost. (The outbox
        # broker hands out only events it has just claimed, still waiting: no check there.)
        return
    batch = max(1, conf.BATCH_SIZE)
    # In a worker, failing webhooks' deliveries are left due for this process's sender to
    # claim as its share for them has room (``webhooks.sender``): neither this task nor the
    # broker's queue holds a healthy webhook's first attempt behind them.
    lane = helping and sender.usable()
    token, fresh = outbox.fan_out_and_lease(
        event_ids,
        oldest_others=max(0, batch - len(event_ids)) if helping else 0,
        lease_failing=not lane,
    )
    tracing.fanned_out(fresh)
    # Further batches, leased to tokens of their own: other workers send them. (None: left
    # due, for a sender's claim.)
    hand_to_workers([d for d in fresh if d.lease_token not in (token, None)])
    own = [d for d in fresh if d.lease_token == token]
    own = ratelimit.admit(own, token, new=True)  # over a webhook's rate limit: given back
    if own:
        _send(own, token, AUTOMATIC, background=helping)
    if lane:
        # Other due work (retries, deliveries given back) is claimed by the sender itself,
        # within its share: a task would claim failing webhooks' deliveries to give most back.
        sender.get().wake_at(timezone.now())
    elif helping:
        token, due = outbox.claim_due(batch)
        if due:
            send_claimed(due, token, renew=False, background=True)


def hand_to_workers(deliveries) -> int:
    """Enqueue leased deliveries as ``deliver`` tasks, one per lease; returns how many went.
    Those the broker refuses are given back, still due: a later task or the sweep sends them."""
    by_lease: dict = {}
    for d in deliveries:
        by_lease.setdefault(d.lease_token, []).append(d)
    sent = 0
    for token, batch in by_lease.items():
        if outbox.enqueue("webhooks.tasks.deliver", [str(d.pk) for d in batch], str(token)):
            sent += len(batch)
        else:
            _release(batch, token)
    return sent


def _run_by_workers() -> bool:
    """True when tasks go through the broker to workers, False in django-q2's sync mode."""
    from django_q.conf import Conf

    return not Conf.SYNC


def send_claimed(
    ids, token, trigger: str = AUTOMATIC, *, renew: bool = True, background: bool = False
):
    """Send the deliveries still leased under ``token``; a stale or doubled task sends nothing.

    ``renew=False`` when the claim was made just now (its lease is whole). ``background``:
    a task's call, which may hand the requests to the worker process's sender and return
    at once (then no attempts are returned); otherwise they are sent here.
    """
    now = timezone.now()
    if renew:
        # A task may have waited in the queue: renew the lease before sending, so it
        # cannot expire mid-request and let the sweeper hand the delivery to another worker.
        stale = Delivery.objects.filter(pk__in=ids, lease_token=token, leased_until__gt=now)
        if background and sender.usable():
            # The process's sender starts each request only while the delivery's own lease
            # leaves time for it (``sender._start_by``): there a lease with most of its
            # sending window left (a batch a fan-out handed over moments ago) is not written
            # again, one row update per delivery fewer.
            stale = stale.filter(leased_until__lt=now + _renew_below())
        stale.update(leased_until=now + timedelta(seconds=conf.LEASE_SECONDS))
    deliveries = list(
        Delivery.objects.filter(pk__in=ids, lease_token=token, leased_until__gt=now)
        .select_related("event")
        .order_by("created_at")
    )
    # One Subscription per webhook, not per delivery: its secrets are decrypted once.
    subscriptions = Subscription.objects.in_bulk({d.subscription_id for d in deliveries})
    deliveries = [d for d in deliveries if d.subscription_id in subscriptions]  # not deleted
    for d in deliveries:
        d.subscription = subscriptions[d.subscription_id]
    if trigger == AUTOMATIC:
        inactive = [d for d in deliveries if not d.subscription.is_active]
        if inactive:  # switched off since the claim: keep them pending for when it is back
            _release(inactive, token)
            deliveries = [d for d in deliveries if d.subscription.is_active]
        allowed = plans.allowed_scopes({d.subscription.scope for d in deliveries})
        refused = [d for d in deliveries if d.subscription.scope not in allowed]
        if refused:  # the customer's plan no longer includes webhooks: held, not sent
            _hold(refused, token)
            deliveries = [d for d in deliveries if d.subscription.scope in allowed]
        # Over a webhook's rate limit: given back pending, due when their turn comes.
        deliveries = ratelimit.admit(deliveries, token)
    return _send(deliveries, token, trigger, background=background)


def _renew_below() -> timedelta:
    """A lease with less than this left is renewed before a task hands it to the sender:
    once a quarter of its sending window (the lease less a request's deadline and its
    recording) has gone."""
    needed = conf.TIMEOUT + deadline.MARGIN + deadline.RECORDING_ALLOWANCE
    return timedelta(seconds=needed + 0.75 * max(0.0, conf.LEASE_SECONDS - needed))


def _send(deliveries, token, trigger, *, background: bool) -> list[DeliveryAttempt]:
    """Hand the deliveries to this worker process's sender (a task's call, when it may:
    ``sender.usable``), or send them here and return their attempts."""
    if background and deliveries and sender.usable():
        sender.get().submit(deliveries, token, trigger)
        return []
    return _send_all(deliveries, token, trigger)


#: Seconds a delivery of a scope the plan gate refuses waits before the gate is asked again.
#: Released still due, the sweeper would claim it again at once, and forever ahead of the
#: others (it claims the soonest due first).
PLAN_HOLD = 600.0


def _hold(deliveries, token) -> None:
    """Give deliveries back, pending, not due for ``PLAN_HOLD`` seconds."""
    Delivery.objects.filter(pk__in=[d.pk for d in deliveries], lease_token=token).update(
        lease_token=None,
        leased_until=None,
        next_attempt_at=timezone.now() + timedelta(seconds=PLAN_HOLD),
    )


def endpoint_key(url: str) -> str:
    """What the per-endpoint cap, the hand-back after a timeout, and health count by: the
    customer's URL itself. Receivers often share a host (automation platforms, chat
    incoming-webhooks, gateways, tunnels): one customer's stalled path there must not slow
    another's. Scheme and host are compared without case, as HTTP does."""
    try:
        parts = urlsplit(url)
        return parts._replace(
            scheme=parts.scheme.lower(), netloc=parts.netloc.lower(), fragment=""
        ).geturl()
    except (TypeError, ValueError, AttributeError):  # a stored URL that is no URL
        return str(url)


def send_budget() -> float:
    """Seconds after the lease renewal during which a batch may still start requests.

    A request started within it ends (its total deadline: ``WEBHOOKS_TIMEOUT`` plus
    ``deadline.MARGIN``) and is recorded before the lease runs out and before django-q2
    kills the task; what is left is given back, still due.
    """
    limit = conf.LEASE_SECONDS
    try:
        from django_q.conf import Conf

        if Conf.TIMEOUT:
            limit = min(limit, float(Conf.TIMEOUT))
    except Exception:  # noqa: BLE001 - django-q2 not configured: the lease alone bounds it
        pass
    return max(0.0, limit - conf.TIMEOUT - deadline.MARGIN - deadline.RECORDING_ALLOWANCE)


#: Outcomes recorded in one transaction at most, and how long (seconds) a finished request
#: may wait for others to be recorded with it.
RECORD_GROUP_SIZE = 50
RECORD_GROUP_WAIT = 0.02
#: Seconds a turn of the loop spends starting requests at most: then it collects, records
#: and lets its owner add what tasks handed over (healthy webhooks' URLs start first).
START_BUDGET = 0.05
#: A webhook whose request has been in flight this many seconds, or whose last request from
#: this process failed, is failing for the lane before its row says so (the row counts a
#: failure only once recorded, after the whole timeout): seen by every turn at most
#: SLOW_CHECK seconds late, forgotten after TROUBLE_MEMORY seconds without news (a success
#: forgets it at once).
SLOW_AFTER = 1.0
SLOW_CHECK = 0.25
TROUBLE_MEMORY = 60.0


def _send_all(deliveries, token, trigger) -> list[DeliveryAttempt]:
    """POST every delivery, ``MAX_CONCURRENCY`` at a time and round-robin over endpoints,
    in the calling thread: it returns when every request has ended and been recorded (sync
    mode, tests, manual actions, and a task run inside a transaction)."""
    if not deliveries:
        return []
    limit = max(1, conf.MAX_CONCURRENCY)
    loop = SendLoop(limit, _pool(limit).submit if len(deliveries) > 1 else None)
    items = loop.add(deliveries, token, trigger, start_by=time.monotonic() + send_budget())
    while not loop.idle():
        loop.step()
    return [item.attempt for item in items if item.attempt is not None]


@dataclass(eq=False)
class SendItem:
    """One delivery in a ``SendLoop``: its lease and when its request must start at the latest."""

    delivery: Delivery
    token: uuid.UUID
    trigger: str
    start_by: float  # time.monotonic(): not started by then, it is given back still due
    request: http.OutgoingRequest | None = None
    attempt: DeliveryAttempt | None = None
    started: float | None = None  # time.monotonic() its request started


class SendLoop:
    """Deliveries waiting for a slot, requests in flight, outcomes waiting to be recorded.

    The one sending loop: ``_send_all`` turns it until it is empty, the process's sender
    (``webhooks.sender``) keeps turning it while tasks add deliveries. Only the thread that
    calls ``step`` touches it (and records, with its own database connection).
    """

    def __init__(
        self, limit: int, submit=None, per_endpoint: int | None = None, recorder=None
    ) -> None:
        self.limit = limit
        self.per_endpoint = max(1, min(limit, per_endpoint or conf.MAX_CONCURRENCY_PER_ENDPOINT))
        self.submit = submit  # pool.submit(fn, *args) -> Future; None: requests run inline
        self.waiting: dict[str, deque[SendItem]] = {}
        self.in_flight: dict = {}  # future -> (item, endpoint key)
        self.busy: Counter[str] = Counter()
        self.unrecorded: list[tuple[SendItem, http.Outcome]] = []
        self.record_by = 0.0
        # None: this thread records; else its owner's recorder thread (``sender.Recorder``).
        self.recorder = recorder
        self.more_to_start = False  # the last turn ran out of START_BUDGET
        self.started_any = False
        self.starting = True  # False once the process stops: nothing new starts
        self.warned: set = set()  # webhooks whose unusable settings were logged
        self.woken = threading.Event()  # set when a request ends (or the owner has news)
        self._earliest_start_by = float("inf")
        self._senders: dict = {}
        # Webhook id -> time.monotonic() this process last saw its request fail or take
        # over SLOW_AFTER: read by tasks' threads (``failing``), written by this one.
        self.troubled: dict = {}
        self._slow_checked = 0.0

    def add(self, deliveries, token, trigger, *, start_by: float) -> list[SendItem]:
        items = [SendItem(d, token, trigger, start_by) for d in deliveries]
        for item in items:
            self.waiting.setdefault(endpoint_key(item.delivery.subscription.url), deque()).append(
                item
            )
        if items:
            self._earliest_start_by = min(self._earliest_start_by, start_by)
        return items

    def load(self) -> int:
        """Deliveries waiting for a slot, in flight, or not recorded yet."""
        recording = self.recorder.held() if self.recorder is not None else 0
        return (
            len(self.in_flight)
            + sum(len(queue) for queue in self.waiting.values())
            + len(self.unrecorded)
            + recording
        )

    def idle(self) -> bool:
        return not self.waiting and not self.in_flight and not self.unrecorded

    def failing(self, delivery) -> bool:
        """Failing for the lane: its row's failure streak, or its last request from this
        process failed or is taking over SLOW_AFTER seconds."""
        return sender.failing(delivery) or delivery.subscription_id in self.troubled

    def step(self, longest_wait: float | None = None) -> None:
        """One turn: give back what is too late, start requests, collect, record."""
        self._give_back_late()
        self._mark_slow()
        self._start_requests()
        self._collect(longest_wait)
        self._record()

    def take_waiting(self) -> list[SendItem]:
        """Remove and return every delivery not started yet (the process stops)."""
        left = [item for queue in self.waiting.values() for item in queue]
        self.waiting.clear()
        return left

    def give_back_in_flight(self) -> int:
        """Release the deliveries whose requests have not ended (the process stops): they are
        sent again, with the same webhook-id, by another worker."""
        left = [item for item, _ in self.in_flight.values()]
        self.in_flight.clear()
        _release_items(left)
        return len(left)

    def _give_back_late(self) -> None:
        # A delivery whose request could not end (and be recorded) within its lease is given
        # back, still due, rather than sent: once some request started, so a batch with a
        # budget too short for anything still sends one.
        now = time.monotonic()
        if not self.waiting or not self.started_any or now <= self._earliest_start_by:
            return
        late, earliest = [], float("inf")
        for key in list(self.waiting):
            queue = self.waiting[key]
            keep = deque(item for item in queue if item.start_by >= now)
            late.extend(item for item in queue if item.start_by < now)
            if keep:
                self.waiting[key] = keep
                earliest = min(earliest, min(item.start_by for item in keep))
            else:
                del self.waiting[key]
        self._earliest_start_by = earliest
        if late:
            logger.info("Out of time: %d deliveries given back, still due.", len(late))
            self._give_back(late)

    def _start_requests(self) -> None:
        """Start requests round-robin over endpoints, within both caps: every healthy
        webhook's URL first, then failing webhooks' ones for at most START_BUDGET seconds
        (with hundreds waiting, starting them takes a busy process a while, and what tasks
        hand over meanwhile waits for the turn to end)."""
        self.more_to_start = False
        if not self.starting:
            return
        healthy, failing = [], []
        for key, queue in self.waiting.items():
            (failing if self.failing(queue[0].delivery) else healthy).append(key)
        if self._round_robin(healthy, None):
            until = time.monotonic() + START_BUDGET if self.submit is not None else None
            self._round_robin(failing, until)

    def _mark_slow(self) -> None:
        now = time.monotonic()
        if now - self._slow_checked < SLOW_CHECK:
            return
        self._slow_checked = now
        for item, _ in self.in_flight.values():
            if item.started is not None and now - item.started > SLOW_AFTER:
                self.troubled[item.delivery.subscription_id] = now
        for webhook_id in [w for w, at in self.troubled.items() if now - at > TROUBLE_MEMORY]:
            del self.troubled[webhook_id]

    def _note(self, delivery, outcome) -> None:
        if outcome.succeeded:
            self.troubled.pop(delivery.subscription_id, None)
        elif not outcome.aborted:  # the receiver's choice for one message, not a failing webhook
            self.troubled[delivery.subscription_id] = time.monotonic()

    def _round_robin(self, keys: list[str], until: float | None) -> bool:
        """Start the waiting requests of ``keys``, one per URL in turn, until none can start;
        False if stopped by the process's limit, or by ``until`` (a time.monotonic(), then
        ``more_to_start``: the next turn goes on without waiting)."""
        progressed = True
        while progressed:
            progressed = False
            for key in keys:
                if key not in self.waiting or self.busy[key] >= self.per_endpoint:
                    continue
                if len(self.in_flight) >= self.limit:
                    return False
                if until is not None and time.monotonic() > until:
                    self.more_to_start = True
                    return False
                self._start(key)
                progressed = True
        return True

    def _start(self, key: str) -> None:
        queue = self.waiting[key]
        item = queue.popleft()
        if not queue:
            del self.waiting[key]
        # What the webhook's row holds is checked here: a row that cannot make a request
        # fails its own attempt, with the reason, and nothing is sent.
        item.request, unsendable = http.prepare(item.delivery)
        if unsendable is not None:
            future = _Done(unsendable)
            _warn_unsendable(item.delivery, unsendable, self.warned)
        else:
            send = self._sender(item.trigger)
            if self.submit is None:
                future = _Done(send(item.request, item.delivery))
            else:
                future = self.submit(send, item.request, item.delivery)
                future.add_done_callback(self._wake)
        item.started = time.monotonic()
        self.in_flight[future] = (item, key)
        self.busy[key] += 1
        self.started_any = True

    def _give_back(self, items) -> None:
        """Release deliveries the loop will not send now, still due: by the recorder's thread
        if there is one (the database may keep a busy process waiting)."""
        if self.recorder is None:
            _release_items(items)
        else:
            self.recorder.run_soon(lambda: _release_items(items))

    def _sender(self, trigger):
        # http.post, in an attempt span when tracing
        if trigger not in self._senders:
            self._senders[trigger] = tracing.sender(http.post, trigger)
        return self._senders[trigger]

    def _wake(self, _future) -> None:
        self.woken.set()

    def _collect(self, longest_wait: float | None) -> None:
        done = [f for f in self.in_flight if f.done()]
        recorder_busy = self.recorder is not None and self.recorder.busy()
        if not done and (self.in_flight or (self.unrecorded and recorder_busy)):
            timeout = longest_wait
            if self.in_flight:  # back in time to see a request pass SLOW_AFTER
                timeout = SLOW_CHECK if timeout is None else min(timeout, SLOW_CHECK)
            if self.more_to_start:
                timeout = 0.0
            elif self.unrecorded and not recorder_busy:
                until_record = max(0.0, self.record_by - time.monotonic())
                timeout = until_record if timeout is None else min(timeout, until_record)
            self.woken.wait(timeout)
            self.woken.clear()
            done = [f for f in self.in_flight if f.done()]
        for future in done:
            item, key = self.in_flight.pop(future)
            self.busy[key] -= 1
            if not self.busy[key]:
                del self.busy[key]
            try:
                outcome = future.result()
            except Exception as exc:  # noqa: BLE001 - post never raises; if it did, log it
                logger.exception("Sending delivery %s failed.", item.delivery.pk)
                outcome = http.Outcome(
                    error_kind=http.ErrorKind.OTHER,
                    error_message=f"The request failed ({type(exc).__name__}).",
                )
            self._note(item.delivery, outcome)
            if not self.unrecorded:
                self.record_by = time.monotonic() + RECORD_GROUP_WAIT
            self.unrecorded.append((item, outcome))
            if outcome.error_kind == http.ErrorKind.TIMEOUT and key in self.waiting:
                # This endpoint is not answering: its other deliveries would each hold a
                # slot for the whole timeout. Give them back, still due, to be tried later.
                slow = list(self.waiting.pop(key))
                logger.info(  # the webhook, not its URL: a URL may carry the customer's secret
                    "Webhook %s timed out: %d deliveries to its URL given back, still due.",
                    item.delivery.subscription_id,
                    len(slow),
                )
                self._give_back(slow)

    def _record(self) -> None:
        if not self.unrecorded or (
            self.in_flight
            and len(self.unrecorded) < RECORD_GROUP_SIZE
            and time.monotonic() < self.record_by
        ):
            return
        if self.recorder is not None:
            # While the recorder records a group, the next one grows: bigger groups are what
            # keeps recording up with the requests of a busy process.
            if not self.recorder.busy():
                self.recorder.record(self.unrecorded)
                self.unrecorded = []
            return
        record_ended(self.unrecorded)
        self.unrecorded = []


def record_ended(ended_requests) -> None:
    """Record what requests ended with: the (SendItem, Outcome) pairs a ``SendLoop`` collected.

    Requests that ended close together are recorded together, whichever task handed them
    over (one transaction, a constant number of queries, and the GIL taken back from the
    request threads a few times per group rather than per delivery); each delivery's lease
    is released only if it is still the one it was sent under. A recording that fails is
    isolated, never lost."""
    ended = timezone.now()  # one time for the group: their states then match
    groups: list[tuple[str, dict]] = []  # (trigger, {delivery id: (item, outcome)})
    for item, outcome in ended_requests:
        pk = item.delivery.pk
        # A delivery sent twice (its lease ran out mid-request) is recorded twice, apart.
        group = next((g for t, g in groups if t == item.trigger and pk not in g), None)
        if group is None:
            group = {}
            groups.append((item.trigger, group))
        group[pk] = (item, outcome)
    for number, (trigger, group) in enumerate(groups):
        # Each group its own instant: a retried recording tells what its failed try may
        # have committed by (delivery, time), and a delivery sent twice is in two groups.
        at = ended + timedelta(microseconds=number)
        entries = [(i.delivery, i.request, out, at) for i, out in group.values()]
        leases = {pk: item.token for pk, (item, _) in group.items()}
        for (item, _), attempt in zip(
            group.values(), record_outcomes(entries, leases, trigger), strict=True
        ):
            item.attempt = attempt


def _release_items(items) -> None:
    """Give deliveries back, still due, each under the lease it was sent with."""
    by_token: dict = {}
    for item in items:
        by_token.setdefault(item.token, []).append(item.delivery)
    for token, deliveries in by_token.items():
        _release(deliveries, token)


def _warn_unsendable(delivery, outcome, warned: set) -> None:
    """Log, once per webhook and batch, why its deliveries cannot be sent."""
    if delivery.subscription_id not in warned:
        warned.add(delivery.subscription_id)
        logger.warning(
            "Webhook %s: nothing sent (%s). %s",
            delivery.subscription_id,
            outcome.error_kind,
            outcome.error_message,
        )


class _Done:
    """A finished "future" for the single-request path (no thread needed)."""

    def __init__(self, value) -> None:
        self._value = value

    def done(self) -> bool:
        return True

    def result(self):
        return self._value


_pool_lock = threading.Lock()
_pool_state: dict = {}


def _pool(size: int) -> ThreadPoolExecutor:
    """This process's request threads, kept between batches so their sessions keep
    connections alive; made again after a fork or a change of ``MAX_CONCURRENCY``."""
    with _pool_lock:
        key = (os.getpid(), size)
        if _pool_state.get("key") != key:
            _pool_state["key"] = key
            _pool_state["pool"] = ThreadPoolExecutor(
                max_workers=size, thread_name_prefix="webhooks-send"
            )
        return _pool_state["pool"]


def _release(deliveries, token) -> None:
    Delivery.objects.filter(pk__in=[d.pk for d in deliveries], lease_token=token).update(
        lease_token=None, leased_until=None
    )


#: How often a recording is tried again after a transient database error, and the first pause.
RECORDING_TRIES = 5
RECORDING_BACKOFF = 0.1


def record_outcomes(items, token, trigger: str = AUTOMATIC) -> list[DeliveryAttempt | None]:
    """Log each attempt and move its delivery on, without ever sending anything again.

    ``items`` are (delivery, request, outcome, when the request ended) tuples; ``token``
    the lease they were sent under, or {delivery id: lease} when they differ (the process's
    sender records what several tasks handed over together). A delivery's lease is
    released only if it is still that one.

    All of them go in one transaction. A transient database error (lock, deadlock, lost
    connection, SQLite's "database is locked") is retried as a recording. If the group
    still cannot be recorded, each delivery is recorded on its own, so one that the
    database refuses cannot hold back the others; that one is logged without the
    receiver's answer and retried later.
    """
    if not items:
        return []
    try:
        return _with_retries(items, token, trigger)
    except Exception:  # noqa: BLE001 - find the culprit below
        logger.warning("Could not record %d outcome(s) together.", len(items), exc_info=True)
    if len(items) == 1:
        return [_record_unrecordable(items[0], token, trigger)]
    results = []
    for item in items:
        try:
            results.extend(_with_retries([item], token, trigger))
        except Exception:  # noqa: BLE001 - this one only
            logger.exception("Could not record the outcome of delivery %s.", item[0].pk)
            results.append(_record_unrecordable(item, token, trigger))
    return results


def _with_retries(items, token, trigger) -> list[DeliveryAttempt | None]:
    """``_record_group``, again after a transient error; results in the order of ``items``."""
    pause = RECORDING_BACKOFF
    for attempt in range(RECORDING_TRIES):
        try:
            if not attempt:
                return _record_group(items, token, trigger)
            # The last try may have committed before its answer was lost: never log twice.
            pending = _not_yet_recorded(items)
            recorded = iter(_record_group(pending, token, trigger) if pending else [])
            return [next(recorded) if item in pending else None for item in items]
        except (OperationalError, InterfaceError):
            if attempt == RECORDING_TRIES - 1:
                raise
            logger.warning("Recording outcomes hit a transient database error; retrying.")
            if not connection.in_atomic_block:
                connection.close_if_unusable_or_obsolete()
            time.sleep(pause)
            pause *= 2
    raise AssertionError("unreachable")


def _not_yet_recorded(items):
    done = set(
        DeliveryAttempt.objects.filter(
            delivery_id__in=[d.pk for d, *_ in items], created_at__in=[at for *_, at in items]
        ).values_list("delivery_id", "created_at")
    )
    return [item for item in items if (item[0].pk, item[3]) not in done]


def _record_unrecordable(item, token, trigger) -> DeliveryAttempt | None:
    """The database refused this outcome (or kept failing): log the attempt without the
    receiver's answer, as a failure to retry later. If even that fails, the lease runs out
    and the sweeper sends it again."""
    delivery, request, outcome, at = item
    # Only what cannot be refused: no answer, and the request without its headers.
    request = http.OutgoingRequest(
        responses.safe_text(request.url, limit=http.URL_LIMIT), {}, request.body
    )
    stripped = http.Outcome(
        status_code=outcome.status_code,
        duration_ms=outcome.duration_ms,
        error_kind=DeliveryAttempt.ErrorKind.OTHER,
        error_message="The receiver's answer could not be recorded; the delivery will be retried.",
    )
    try:
        [attempt] = _with_retries([(delivery, request, stripped, at)], token, trigger)
        return attempt
    except Exception:  # noqa: BLE001 - the lease expiring is the last resort
        logger.exception("Could not record delivery %s at all; its lease will expire.", delivery.pk)
        return None


#: What recording an attempt changes on its delivery (``attempt_count`` is always +1).
_RECORDED_FIELDS = [
    "last_status_code",
    "last_error",
    "last_attempt_at",
    "lease_token",
    "leased_until",
    "status",
    "next_attempt_at",
    "resend_requested_at",
    "updated_at",
]


def _save_states(rows) -> None:
    """Write the recorded rows' new state: one UPDATE per distinct state, not per row.

    Deliveries that ended together mostly end alike (succeeded, same status, same time),
    so a batch is one or two UPDATEs. Retries differ only by their jittered next attempt,
    which one CASE sets per row. The rows are locked by the caller, so
    ``attempt_count + 1`` in SQL is the count read plus one.
    """
    shared = [name for name in _RECORDED_FIELDS if name != "next_attempt_at"]
    groups: dict[tuple, dict] = {}  # shared state -> {pk: next attempt}
    for row in rows:
        state = tuple(getattr(row, name) for name in shared)
        groups.setdefault(state, {})[row.pk] = row.next_attempt_at
    q, meta = connection.ops.quote_name, Delivery._meta
    at = meta.get_field("next_attempt_at")
    count = q(meta.get_field("attempt_count").column)
    for state, next_attempts in groups.items():
        sets, params = [f"{count} = {count} + 1"], []
        for name, value in zip(shared, state, strict=True):
            field = meta.get_field(name)
            sets.append(f"{q(field.column)} = %s")
            params.append(field.get_db_prep_save(value, connection))
        distinct = set(next_attempts.values())
        if len(distinct) == 1:
            sets.append(f"{q(at.column)} = %s")
            params.append(at.get_db_prep_save(distinct.pop(), connection))
        else:
            case, case_params = _case_per_row(Delivery, "next_attempt_at", next_attempts)
            sets.append(case)
            params += case_params
        _update_rows(Delivery, sets, params, next_attempts)


def _case_per_row(model, name: str, values: dict) -> tuple[str, list]:
    """``column = CASE pk WHEN … THEN … ELSE column END``: each row's own value of the field
    ``name``, {pk: value}, in one statement (``ELSE`` the column itself gives the ``CASE``
    the column's type on every database)."""
    q, meta = connection.ops.quote_name, model._meta
    pk, field = meta.pk, meta.get_field(name)
    whens = " ".join(["WHEN %s THEN %s"] * len(values))
    params = []
    for key, value in values.items():
        params += [pk.get_db_prep_value(key, connection), field.get_db_prep_save(value, connection)]
    return f"{q(field.column)} = CASE {q(pk.column)} {whens} ELSE {q(field.column)} END", params


def _update_rows(model, sets: list[str], params: list, pks) -> None:
    """``UPDATE … SET <sets> WHERE pk IN <pks>``, ``params`` those of ``sets``."""
    q, meta = connection.ops.quote_name, model._meta
    params = [*params, *(meta.pk.get_db_prep_value(key, connection) for key in pks)]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {q(meta.db_table)} SET {', '.join(sets)} "
            f"WHERE {q(meta.pk.column)} IN ({', '.join(['%s'] * len(pks))})",
            params,
        )


# The recording runs once per group of ended requests: its statements are plain SQL, as
# the ORM took several times more CPU to build each of them (~0.3 ms) than the database
# took to run it. Only the rare one (a webhook switched off) keeps the ORM.


def _lock_deliveries(pks, *, count_tries: bool = False) -> dict:
    """{pk: row} of the deliveries that still exist, and whose webhook does (a deleted
    webhook's log is deleted after it: ``webhooks.removal``), locked in primary-key order,
    each with ``webhook_failures``: its webhook's failure streak, read in the same
    statement (a subquery, whose rows no database locks), so a group of successes need not
    read it. With ``count_tries``, each also has ``automatic_tries``: its automatic
    attempts so far (the retry schedule's step), counted in the same statement."""
    q, meta, subs = connection.ops.quote_name, Delivery._meta, Subscription._meta
    pk = meta.pk
    columns = ", ".join(f"d.{q(f.column)}" for f in meta.concrete_fields)
    selected = (
        f"(SELECT s.{q(subs.get_field('consecutive_failures').column)} FROM {q(subs.db_table)} s "
        f"WHERE s.{q(subs.pk.column)} = d.{q(meta.get_field('subscription').column)}) "
        f"AS {q('webhook_failures')}"
    )
    extra, params = ("webhook_failures",), []
    if count_tries:
        attempts = DeliveryAttempt._meta
        selected += (
            f", (SELECT COUNT(*) FROM {q(attempts.db_table)} a "
            f"WHERE a.{q(attempts.get_field('delivery').column)} = d.{q(pk.column)} "
            f"AND a.{q(attempts.get_field('trigger').column)} = %s) AS {q('automatic_tries')}"
        )
        extra, params = ("webhook_failures", "automatic_tries"), [AUTOMATIC.value]
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    sql = (
        f"SELECT {columns}, {selected} FROM {q(meta.db_table)} d "
        f"WHERE d.{q(pk.column)} IN ({', '.join(['%s'] * len(pks))}) "
        f"ORDER BY d.{q(pk.column)}{lock}"
    )
    params += [pk.get_db_prep_value(key, connection) for key in pks]
    found = fetch_rows(Delivery, sql, params, extra=extra)
    # No streak: no webhook (the column is NOT NULL), so nothing is recorded for it.
    return {row.pk: row for row in found if row.webhook_failures is not None}


def _insert_attempts(attempts) -> None:
    """``bulk_create`` without the ORM's per-field machinery; ids are read back where the
    database returns them, as ``bulk_create`` sets them."""
    ops, meta = connection.ops, DeliveryAttempt._meta
    fields = [f for f in meta.concrete_fields if f is not meta.pk]
    head = (
        f"INSERT INTO {ops.quote_name(meta.db_table)} "
        f"({', '.join(ops.quote_name(f.column) for f in fields)}) "
    )
    # RETURNING written here: Django's helpers for it were renamed in 6.0. The ids come
    # back in the rows' order, as bulk_create (VALUES, or UNNEST since Django 5.2) has them.
    returning = connection.features.can_return_rows_from_bulk_insert
    tail = f"RETURNING {ops.quote_name(meta.pk.column)}" if returning else ""
    size = max(1, ops.bulk_batch_size(fields, attempts))
    db = connections[connection.alias]  # this thread's: the proxy costs a lookup per value
    with db.cursor() as cursor:
        for start in range(0, len(attempts), size):
            chunk = attempts[start : start + size]
            values, params = insert_rows(DeliveryAttempt, fields, chunk, db)
            cursor.execute(f"{head}{values} {tail}", params)
            if returning:
                for attempt, (pk,) in zip(chunk, cursor.fetchall(), strict=True):
                    attempt.pk = pk
    for attempt in attempts:  # saved: as bulk_create leaves them
        attempt._state.adding, attempt._state.db = False, connection.alias


def _record_group(items, token, trigger) -> list[DeliveryAttempt | None]:
    """One transaction. Locks are taken in one fixed order, so two workers recording
    overlapping subscriptions cannot deadlock: delivery rows by primary key, then
    subscription rows by primary key."""
    now = timezone.now()
    with transaction.atomic():
        # A failure's retry step is its count of automatic attempts: read with the lock.
        count_tries = trigger == AUTOMATIC and not all(out.succeeded for _, _, out, _ in items)
        rows = _lock_deliveries([d.pk for d, *_ in items], count_tries=count_tries)
        attempts: list[DeliveryAttempt | None] = []
        health: dict = {}  # subscription id -> outcomes in order (True: success)
        gone: dict = {}  # subscription id -> reason the receiver asked to be unsubscribed
        given_up: set = set()  # subscriptions with a delivery that failed for good
        for delivery, request, outcome, at in items:
            row = rows.get(delivery.pk)
            if row is None:  # deleted meanwhile: nothing to record
                attempts.append(None)
                continue
            attempts.append(_attempt(row, delivery, request, outcome, trigger, at))
            lease = token.get(row.pk) if isinstance(token, dict) else token
            _advance(row, outcome, lease, trigger, at, getattr(row, "automatic_tries", 0) + 1)
            row.updated_at = now
            if (trigger == AUTOMATIC or outcome.succeeded) and not outcome.aborted:
                # A failed test or manual resend says nothing new, and a message the
                # receiver refused on purpose is no sign of trouble: neither feeds the
                # auto-disable clock.
                health.setdefault(row.subscription_id, []).append(outcome.succeeded)
            if outcome.status_code == 410 and not outcome.succeeded:
                gone[row.subscription_id] = (
                    f"The receiver answered 410 Gone on {at:%Y-%m-%d %H:%M} UTC, "
                    "asking for no more webhooks."
                )
            elif row.status == Delivery.Status.FAILED and trigger == AUTOMATIC:
                if not outcome.aborted:
                    given_up.add(row.subscription_id)
        recorded = [a for a in attempts if a is not None]
        if recorded:
            _insert_attempts(recorded)
            health_hours.count(recorded)
        _save_states([rows[d.pk] for d, *_ in items if d.pk in rows])
        streaks = {row.subscription_id: row.webhook_failures for row in rows.values()}
        disabled = _update_health(health, gone, given_up, now, streaks)
        retry_at = {
            row.next_attempt_at
            for row in rows.values()
            if row.status == Delivery.Status.PENDING and row.next_attempt_at is not None
        }
        if retry_at:  # once committed: this process's clock claims each retry when due
            transaction.on_commit(lambda: wakeups.due_at_each(retry_at), robust=True)
    metrics.outcomes_recorded(items, rows, trigger, disabled, gone)
    subscriptions = {d.subscription_id: d.subscription for d, *_ in items}
    for pk, reason in disabled.items():
        sub = subscriptions[pk]
        sub.is_active, sub.disabled_reason, sub.disabled_at = False, reason[:300], now
    for (delivery, _, outcome, _), attempt in zip(items, attempts, strict=True):
        if attempt is not None:
            sub = subscriptions[delivery.subscription_id]
            reason = disabled.get(sub.pk, "")
            _announce(rows[delivery.pk], attempt, outcome, reason, sub)
            disabled.pop(sub.pk, None)  # announce a disabling once
    return attempts


def _attempt(row, delivery, request, outcome, trigger, at) -> DeliveryAttempt:
    return DeliveryAttempt(
        delivery=row,
        number=row.attempt_count + 1,
        trigger=trigger,
        # Stored values come from a row anyone may have written: escaped and cut so that
        # every database stores them (PostgreSQL refuses NUL in text and JSON).
        request_url=responses.safe_text(request.url, limit=http.URL_LIMIT),
        request_headers=responses.headers_dict(
            request.logged_headers(delivery.subscription.sensitive_header_names())
        ),
        request_body_sha256=DeliveryAttempt.digest(request.body),
        response_status_code=outcome.status_code,
        response_headers=responses.headers_dict(outcome.headers),
        response_body=responses.safe_text(outcome.body),
        duration_ms=outcome.duration_ms,
        succeeded=outcome.succeeded,
        error_kind=outcome.error_kind,
        error_message=responses.safe_text(outcome.error_message, limit=500),
        created_at=at,
    )


def _advance(row, outcome, token, trigger, at, automatic_tries: int) -> None:
    """Move the delivery on: done, retry later, or give up."""
    row.attempt_count += 1
    row.last_status_code = outcome.status_code
    row.last_error = responses.safe_text(outcome.error_message, limit=300)
    row.last_attempt_at = at
    if row.lease_token == token:
        row.lease_token = row.leased_until = None
    if trigger == MANUAL:  # the requested attempt is made
        row.resend_requested_at = None
    if outcome.succeeded:
        row.status, row.next_attempt_at = Delivery.Status.SUCCEEDED, None
    elif outcome.status_code == 410:
        row.status, row.next_attempt_at = Delivery.Status.FAILED, None
    elif outcome.aborted and row.status == Delivery.Status.PENDING:
        row.status, row.next_attempt_at = Delivery.Status.FAILED, None  # the receiver said so
    elif trigger == AUTOMATIC and row.status == Delivery.Status.PENDING:
        delay = retries.retry_delay(automatic_tries, outcome.retry_after)
        if delay is None:
            row.status, row.next_attempt_at = Delivery.Status.FAILED, None
        else:
            row.next_attempt_at = at + timedelta(seconds=delay)
    elif row.status == Delivery.Status.PENDING and row.next_attempt_at is None:
        # A one-shot delivery (a test event) has no schedule to go back to: it failed.
        row.status = Delivery.Status.FAILED
    # Otherwise a failed manual attempt leaves the delivery's state and schedule as they were.


def _update_health(health, gone, given_up, now, streaks) -> dict:
    """Failure streaks and disabling, subscription rows locked in primary-key order.

    Returns {subscription id: reason} for the subscriptions switched off here. Healthy
    subscriptions that only succeeded are not written (nor locked) at all: ``streaks``,
    {subscription id: its failure streak}, was read with the deliveries' lock. Two
    statements for any number of webhooks (a lock read, one UPDATE), plus one per webhook
    switched off: a group of failures often spans many webhooks (a receiver's host down).
    """
    touched = {pk for pk, outcomes in health.items() if not all(outcomes)}
    succeeded = [pk for pk, outcomes in health.items() if all(outcomes)]
    if succeeded:
        touched.update(pk for pk in succeeded if streaks.get(pk))
    if not touched:
        return {}
    disabled, streak_of = {}, {}
    for sub in _lock_subscriptions(touched):
        outcomes = health[sub.pk]
        if True not in outcomes:  # failures only: the streak grows
            failures, since = sub.consecutive_failures + len(outcomes), sub.failing_since or now
        else:  # the last success ends the streak; failures after it start a new one
            failures = outcomes[::-1].index(True)
            since = now if failures else None
        streak_of[sub.pk] = (failures, since)
        reason = gone.get(sub.pk, "")
        if not reason and sub.pk in given_up:
            reason = _failing_too_long(since, now)
        if reason and sub.is_active:
            disabled[sub.pk] = reason
    if streak_of:  # else every one was deleted meanwhile
        _save_streaks(streak_of)
    for pk, reason in disabled.items():  # rare: once in a webhook's life, until re-enabled
        Subscription.objects.filter(pk=pk).update(
            is_active=False, disabled_reason=reason[:300], disabled_at=now
        )
    return disabled


_STREAK_FIELDS = ("id", "consecutive_failures", "failing_since", "is_active")


def _lock_subscriptions(pks) -> list[Subscription]:
    """The webhooks ``pks`` that still exist, locked in primary-key order, with only what
    the failure streak needs (their secrets are not read, nor decrypted)."""
    q, meta = connection.ops.quote_name, Subscription._meta
    fields = [f for f in meta.concrete_fields if f.name in _STREAK_FIELDS]
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    sql = (
        f"SELECT {', '.join(q(f.column) for f in fields)} FROM {q(meta.db_table)} "
        f"WHERE {q(meta.pk.column)} IN ({', '.join(['%s'] * len(pks))}) "
        f"ORDER BY {q(meta.pk.column)}{lock}"
    )
    params = [meta.pk.get_db_prep_value(pk, connection) for pk in pks]
    return fetch_rows(Subscription, sql, params, only=_STREAK_FIELDS)


def _save_streaks(streak_of) -> None:
    """One UPDATE of every locked webhook's streak, {pk: (failures, since)}."""
    sets, params = [], []
    for index, name in enumerate(("consecutive_failures", "failing_since")):
        case, case_params = _case_per_row(
            Subscription, name, {pk: values[index] for pk, values in streak_of.items()}
        )
        sets.append(case)
        params += case_params
    _update_rows(Subscription, sets, params, streak_of)


def _failing_too_long(since, now) -> str:
    limit = conf.DISABLE_AFTER
    if limit is None or since is None:
        return ""
    if since <= now - timedelta(seconds=limit):
        return (
            f"Every delivery has failed since {since:%Y-%m-%d %H:%M} UTC; "
            "re-enable the webhook once the receiver works again."
        )
    return ""


def _announce(delivery, attempt, outcome, disabled_reason, subscription) -> None:
    def send():
        if outcome.succeeded:
            signals.delivery_succeeded.send_robust(Delivery, delivery=delivery, attempt=attempt)
        elif outcome.aborted:
            pass  # the receiver's choice, not a failing webhook: nobody is told it fails
        elif delivery.status == Delivery.Status.FAILED and attempt.trigger == AUTOMATIC:
            signals.delivery_failed.send_robust(Delivery, delivery=delivery, attempt=attempt)
        if disabled_reason and not subscription.is_active:
            signals.subscription_disabled.send_robust(
                Subscription, subscription=subscription, reason=disabled_reason
            )
            logger.warning("Webhook %s disabled: %s", subscription.pk, disabled_reason)

    transaction.on_commit(send, robust=True)
