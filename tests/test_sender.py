"""The worker process's sender, in this process: tasks hand deliveries over and return,
and wait only while the process has ``WEBHOOKS_MAX_IN_FLIGHT`` queued or in flight.
(On a real cluster: tests/reliability/test_sender.py.)"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future

import pytest
from django.db import OperationalError
from django.test import override_settings

import webhooks
from tests.factories import DeliveryFactory, EventFactory, SubscriptionFactory
from tests.test_concurrency import GatedReceiver
from webhooks import outbox, sender, tasks
from webhooks.models import Delivery

pytestmark = pytest.mark.django_db(transaction=True)


def wait_for(check, seconds: float = 10) -> bool:
    until = time.monotonic() + seconds
    while True:
        try:
            if check():
                return True
        except OperationalError as exc:
            # The tests' in-memory SQLite shares one cache between connections: a read
            # while the sender's thread writes fails at once ("table is locked").
            if "locked" not in str(exc):
                raise
        if time.monotonic() > until:
            return False
        time.sleep(0.02)


def inline_submit(started: list):
    """The loop's thread pool, in order and inline: each request's URL goes in ``started``."""

    def submit(send, request, delivery):
        started.append(delivery.subscription.url)
        future: Future = Future()
        future.set_result(send(request, delivery))
        return future

    return submit


@pytest.fixture
def worker_process(monkeypatch):
    """This process as a django-q2 worker (tests/conftest.py undoes it)."""
    monkeypatch.setattr("django_q.conf.Conf.SYNC", False)
    sender.mark_worker_process()


@override_settings(WEBHOOKS_MAX_IN_FLIGHT=2, WEBHOOKS_MAX_CONCURRENCY_PER_ENDPOINT=2)
def test_a_task_returns_at_once_and_waits_only_while_its_process_is_full(worker_process):
    gate = threading.Event()
    slow = GatedReceiver(gate=gate, patience=10)
    try:
        for _ in range(3):
            SubscriptionFactory(url=slow.url, all_events=True)
        event = webhooks.send_event("article.shared", {})
        ids = outbox.fan_out(event.pk)
        token, first = outbox.claim(ids[:2])

        started = time.monotonic()
        tasks.deliver([str(i) for i in first], str(token))
        assert time.monotonic() - started < 1, "the task waited for its requests"
        assert wait_for(lambda: slow.in_flight == 2), "the sender did not send them"

        # Two in flight: the process is full, so the next task waits for a request to end.
        token, last = outbox.claim(ids[2:])
        task = threading.Thread(target=tasks.deliver, args=([str(last[0])], str(token)))
        task.start()
        task.join(0.5)
        assert task.is_alive(), "a task handed more over than the process may have in flight"
        gate.set()
        task.join(10)
        assert not task.is_alive()
        assert wait_for(lambda: Delivery.objects.filter(status="succeeded").count() == 3)
        assert slow.gave_up == 0 and slow.max_in_flight == 2
    finally:
        gate.set()
        slow.stop()


def test_inside_a_transaction_a_task_sends_itself(
    worker_process, django_capture_on_commit_callbacks
):
    """A background thread could not see the transaction's rows: the task sends inline."""
    from django.db import transaction

    receiver = GatedReceiver()
    try:
        SubscriptionFactory(url=receiver.url, all_events=True)
        with transaction.atomic():
            event = webhooks.send_event("article.shared", {})
            token, ids = outbox.claim(outbox.fan_out(event.pk))
            tasks.deliver([str(i) for i in ids], str(token))
            assert Delivery.objects.get().status == Delivery.Status.SUCCEEDED
        assert sender.running() is None
    finally:
        receiver.stop()


@override_settings(WEBHOOKS_BATCH_SIZE=2)
def test_a_batch_handed_over_moments_ago_is_sent_without_renewing_its_lease(worker_process):
    """A fan-out leases its further batches and hands them to other workers as deliver
    tasks: one that runs soon after sends them without writing their leases again (their
    own leases bound when the requests may start); one that waited long renews them."""
    from datetime import timedelta
    from unittest import mock

    from django.db import connection
    from django.utils import timezone

    from webhooks import dispatch
    from webhooks.conf import conf

    receiver = GatedReceiver()
    try:
        for _ in range(6):
            SubscriptionFactory(url=receiver.url, all_events=True)
        event = webhooks.send_event("article.shared", {})
        handed = []
        with mock.patch.object(outbox, "enqueue", lambda *task: handed.append(task) or True):
            dispatch.process_events([str(event.pk)])
        # (On Redis the event's own fan-out task may be handed over here too.)
        delivers = [task for task in handed if task[0] == "webhooks.tasks.deliver"]
        [(_, fresh, fresh_token), (_, waited, waited_token)] = delivers
        # (Each step waits for the sender's recording: SQLite's in-memory test database
        # refuses a second writer outright.)
        assert wait_for(lambda: Delivery.objects.filter(status="succeeded").count() == 2)
        # The second task waited in the queue for most of its lease.
        Delivery.objects.filter(pk__in=waited).update(
            leased_until=timezone.now() + timedelta(seconds=conf.TIMEOUT + 5)
        )
        for ids, token, renewed in ((fresh, fresh_token, False), (waited, waited_token, True)):
            rows = []

            def count(execute, sql, params, many, context, rows=rows):
                result = execute(sql, params, many, context)
                verb, table = sql.split()[:2]
                if verb.upper() == "UPDATE" and table.strip('"`') == "webhooks_delivery":
                    rows.append(context["cursor"].rowcount)
                return result

            with connection.execute_wrapper(count):
                tasks.deliver(ids, token)
            assert sum(rows) == (2 if renewed else 0), rows  # delivery rows written
            done = Delivery.objects.filter(pk__in=ids, status="succeeded")
            assert wait_for(lambda done=done: done.count() == 2)
        assert len(receiver.ids) == len(set(receiver.ids)) == 6
    finally:
        receiver.stop()


def test_the_senders_health_counts_are_written_within_a_second_and_at_exit(
    worker_process, monkeypatch
):
    """The webhook's success figures count what the sender recorded: within
    ``health_hours.FLUSH_EVERY``, and when the process stops before that."""
    from django.utils import timezone

    from webhooks import health_hours, stats
    from webhooks.models import HealthHour

    receiver = GatedReceiver()
    try:
        webhook = SubscriptionFactory(url=receiver.url, all_events=True)
        event = webhooks.send_event("article.shared", {})
        token, ids = outbox.claim(outbox.fan_out(event.pk))
        tasks.deliver([str(i) for i in ids], str(token))
        assert wait_for(lambda: HealthHour.objects.filter(attempts=1).exists(), seconds=5)
        assert stats.endpoint(webhook, timezone.now()).succeeded_24h == 1

        monkeypatch.setattr(health_hours, "FLUSH_EVERY", 3600)  # only the exit writes now
        event = webhooks.send_event("article.shared", {})
        token, ids = outbox.claim(outbox.fan_out(event.pk))
        tasks.deliver([str(i) for i in ids], str(token))
        assert wait_for(lambda: Delivery.objects.filter(status="succeeded").count() == 2)
        time.sleep(0.5)
        counted = lambda: sum(HealthHour.objects.values_list("attempts", flat=True))  # noqa: E731
        assert counted() == 1, "written before the flush"
        sender.running().stop()
        assert counted() == 2
    finally:
        receiver.stop()


@override_settings(WEBHOOKS_MAX_IN_FLIGHT=4, WEBHOOKS_MAX_CONCURRENCY_PER_ENDPOINT=4)
def test_a_failing_webhooks_backlog_fills_a_share_of_the_process_and_never_holds_a_healthy_one(
    worker_process,
):
    """A failing webhook's receiver holds every request it gets; a healthy webhook's events
    still go out at once, and the failing one's wait in the database until there is room."""
    from django.utils import timezone

    gate = threading.Event()
    stalled, healthy = GatedReceiver(gate=gate, patience=30), GatedReceiver()
    try:
        failing = SubscriptionFactory(url=stalled.url, all_events=True)
        SubscriptionFactory(url=healthy.url, all_events=True)
        type(failing).objects.filter(pk=failing.pk).update(
            consecutive_failures=3, failing_since=timezone.now()
        )
        first = [webhooks.send_event("article.shared", {"n": n}) for n in range(8)]
        tasks.process_events([str(first[0].pk)])  # fans out all eight

        share = sender.get().failing_limit
        assert share == 3
        assert wait_for(lambda: healthy.answered == 8), "healthy events waited behind failing ones"
        assert wait_for(lambda: stalled.in_flight == share)

        # The process is as full as failing work may make it: a new event still goes out.
        late = webhooks.send_event("article.shared", {"n": 8})
        started = time.monotonic()
        tasks.process_events([str(late.pk)])
        assert time.monotonic() - started < 1, "the task waited behind the failing backlog"
        assert wait_for(lambda: healthy.answered == 9)
        assert stalled.max_in_flight == share and stalled.gave_up == 0
        waiting = Delivery.objects.filter(subscription=failing, status="pending", lease_token=None)
        assert wait_for(lambda: waiting.count() == 9 - share), "the rest waits in the database"

        gate.set()  # the receiver recovers: everything it was owed is claimed and sent once
        assert wait_for(lambda: Delivery.objects.filter(status="succeeded").count() == 18, 30)
        assert sorted(stalled.ids) == sorted(set(stalled.ids)) and len(stalled.ids) == 9
    finally:
        gate.set()
        stalled.stop()
        healthy.stop()


@override_settings(WEBHOOKS_MAX_IN_FLIGHT=4, WEBHOOKS_MAX_CONCURRENCY_PER_ENDPOINT=1)
def test_a_stopping_worker_hands_a_healthy_webhooks_queued_delivery_to_another(worker_process):
    """django-q2 recycles its workers: a healthy webhook's delivery queued in the stopping
    one goes through the broker's queue to the next worker, not behind every failing
    webhook's due deliveries in the database; a failing webhook's is given back."""
    from django.utils import timezone
    from django_q.signing import SignedPackage

    from webhooks import sweeper

    gate = threading.Event()
    stalled = GatedReceiver(gate=gate, patience=30)
    broker = outbox._get_broker()
    broker.purge_queue()
    try:
        first, healthy, failing = (SubscriptionFactory(url=stalled.url) for _ in range(3))
        type(failing).objects.filter(pk=failing.pk).update(
            consecutive_failures=3, failing_since=timezone.now()
        )
        event = EventFactory()
        by_webhook = {}
        for webhook in (first, healthy, failing):
            delivery = DeliveryFactory(event=event, subscription=webhook)
            token, ids = outbox.claim([delivery.pk])
            by_webhook[webhook.pk] = (delivery.pk, token)
            tasks.deliver([str(i) for i in ids], str(token))
            if webhook is first:  # in flight: the URL's one slot is taken, the others wait
                assert wait_for(lambda: stalled.in_flight == 1)

        sender.running().stop()

        queued = broker.dequeue()
        assert sweeper._tasks_queued(broker) == 0 and len(queued) == 1
        task = SignedPackage.loads(queued[0][1])
        pk, token = by_webhook[healthy.pk]
        assert task["func"] == "webhooks.tasks.deliver"
        assert task["args"][:2] == ([str(pk)], str(token))
        assert Delivery.objects.get(pk=pk).lease_token == token, "its lease goes with it"
        assert Delivery.objects.get(pk=by_webhook[failing.pk][0]).lease_token is None
        assert Delivery.objects.get(pk=by_webhook[first.pk][0]).lease_token is None
    finally:
        broker.purge_queue()
        gate.set()
        stalled.stop()


def test_a_healthy_delivery_goes_out_while_a_slow_group_is_recorded(worker_process, monkeypatch):
    """Recording a big group takes a busy process seconds: meanwhile the sender still
    starts what tasks hand over (its recorder has a thread and a connection of its own)."""
    from webhooks import dispatch

    unblock, recording = threading.Event(), threading.Event()
    record_outcomes = dispatch.record_outcomes

    def slow_database(items, token, trigger=dispatch.AUTOMATIC):
        recording.set()
        unblock.wait(10)
        return record_outcomes(items, token, trigger)

    monkeypatch.setattr(dispatch, "record_outcomes", slow_database)
    first, second = GatedReceiver(), GatedReceiver()
    try:
        for receiver in (first, second):
            SubscriptionFactory(url=receiver.url, all_events=True)
        event = webhooks.send_event("article.shared", {})
        ids = outbox.fan_out(event.pk)
        token, one = outbox.claim(ids[:1])
        tasks.deliver([str(i) for i in one], str(token))
        assert recording.wait(10), "the first request was not recorded"

        token, other = outbox.claim(ids[1:])
        tasks.deliver([str(i) for i in other], str(token))
        assert wait_for(lambda: first.answered + second.answered == 2, seconds=5), (
            "the second delivery waited for the first one's recording"
        )
        assert not Delivery.objects.filter(status="succeeded").exists()
        unblock.set()
        assert wait_for(lambda: Delivery.objects.filter(status="succeeded").count() == 2)
    finally:
        unblock.set()
        first.stop()
        second.stop()


def test_a_turn_starts_every_healthy_webhooks_request_before_a_failing_ones(
    worker_process, monkeypatch
):
    """A task hands over a batch (one delivery per event for a healthy webhook): all of it
    starts before the failing webhooks' requests waiting beside it, not one per pass over
    the failing URLs (each pass starting a request to every one of them)."""
    from django.utils import timezone

    from webhooks import dispatch

    monkeypatch.setattr(dispatch, "START_BUDGET", 30.0)  # a slow machine still starts all
    healthy = GatedReceiver()
    failing_receivers = [GatedReceiver() for _ in range(3)]
    started: list[str] = []

    def loaded(ids):
        return list(Delivery.objects.filter(pk__in=ids).select_related("event", "subscription"))

    try:
        events = [EventFactory() for _ in range(4)]
        loop = dispatch.SendLoop(32, inline_submit(started), per_endpoint=8)
        for receiver in failing_receivers:
            webhook = SubscriptionFactory(url=receiver.url)
            type(webhook).objects.filter(pk=webhook.pk).update(
                consecutive_failures=2, failing_since=timezone.now()
            )
            token, ids = outbox.claim(
                [DeliveryFactory(event=e, subscription=webhook).pk for e in events]
            )
            loop.add(loaded(ids), token, "automatic", start_by=time.monotonic() + 60)
        webhook = SubscriptionFactory(url=healthy.url)
        token, ids = outbox.claim(
            [DeliveryFactory(event=e, subscription=webhook).pk for e in events]
        )
        loop.add(loaded(ids), token, "automatic", start_by=time.monotonic() + 60)

        loop.step(0)
        assert len(started) == 16
        assert started[:4] == [healthy.url] * 4, started
    finally:
        healthy.stop()
        for receiver in failing_receivers:
            receiver.stop()


@override_settings(WEBHOOKS_MAX_IN_FLIGHT=4, WEBHOOKS_MAX_CONCURRENCY_PER_ENDPOINT=4)
def test_a_webhook_whose_request_hangs_is_failing_for_the_lane_before_its_row_says_so(
    worker_process, monkeypatch
):
    """A receiver that never answers is healthy by its row until its first timeout is
    recorded, and each event meanwhile gives it one more request. Once a request has been
    in flight ``SLOW_AFTER`` seconds, its webhook fills only the failing share: it cannot
    fill the process, and a healthy webhook's events still go out at once."""
    from webhooks import dispatch

    monkeypatch.setattr(dispatch, "SLOW_AFTER", 0.3)
    gate = threading.Event()
    stalled, healthy = GatedReceiver(gate=gate, patience=30), GatedReceiver()
    try:
        hanging = SubscriptionFactory(url=stalled.url, all_events=True)
        SubscriptionFactory(url=healthy.url, all_events=True)
        first = webhooks.send_event("article.shared", {"n": 0})
        tasks.process_events([str(first.pk)])
        assert wait_for(lambda: stalled.in_flight == 1 and healthy.answered == 1)
        time.sleep(dispatch.SLOW_AFTER + 2 * dispatch.SLOW_CHECK)
        hanging.refresh_from_db()
        assert hanging.consecutive_failures == 0  # nothing recorded yet: healthy by its row

        later = [webhooks.send_event("article.shared", {"n": n}) for n in range(1, 8)]
        started = time.monotonic()
        for event in later:
            tasks.process_events([str(event.pk)])
        assert time.monotonic() - started < 2, "a task waited for the hanging receiver"
        assert wait_for(lambda: healthy.answered == 8), "healthy events waited"
        share = sender.get().failing_limit
        assert wait_for(lambda: stalled.in_flight == share)
        time.sleep(0.5)
        assert stalled.max_in_flight == share, "the hanging webhook filled the process"

        gate.set()  # it answers at last: everything it was owed is sent, once each
        assert wait_for(lambda: Delivery.objects.filter(status="succeeded").count() == 16, 30)
        assert sorted(stalled.ids) == sorted(set(stalled.ids)) and len(stalled.ids) == 8
    finally:
        gate.set()
        stalled.stop()
        healthy.stop()


def test_a_webhook_whose_last_request_failed_waits_behind_healthy_ones_until_one_succeeds(
    receiver, other_receiver, monkeypatch
):
    """Its row learns of a failure only once the outcome is recorded, and deliveries loaded
    before that still say healthy: the loop's next turn already starts a healthy webhook's
    requests before the failed one's, until one of its requests succeeds."""
    from tests.receiver import Answer
    from webhooks import dispatch

    monkeypatch.setattr(dispatch, "START_BUDGET", 30.0)  # a slow machine still starts all
    started: list[str] = []

    def claimed(webhook, count=1):
        token, ids = outbox.claim([DeliveryFactory(subscription=webhook).pk for _ in range(count)])
        loaded = Delivery.objects.filter(pk__in=ids).select_related("event", "subscription")
        return list(loaded), token

    receiver.script = [Answer(status=500)]  # its first request fails, the next ones succeed
    flaky, good = SubscriptionFactory(url=receiver.url), SubscriptionFactory(url=other_receiver.url)
    # All loaded now, before any outcome is recorded: healthy by their rows.
    first, then = [claimed(flaky)], [claimed(flaky, 2), claimed(good, 2)]
    last = [claimed(flaky), claimed(good)]
    loop = dispatch.SendLoop(32, inline_submit(started), per_endpoint=8)

    def turn(batches):
        started.clear()
        for deliveries, token in batches:
            loop.add(deliveries, token, "automatic", start_by=time.monotonic() + 60)
        loop.step(0)
        return started

    assert turn(first) == [flaky.url]  # 500
    assert turn(then) == [good.url, good.url, flaky.url, flaky.url]  # these succeed
    assert turn(last) == [flaky.url, good.url]  # round-robin again, the flaky one first


def test_due_work_whose_claim_the_database_refused_is_claimed_again_soon(
    worker_process, receiver, monkeypatch
):
    """A claim of due work that the database refuses (SQLite's "table is locked", a failover)
    leaves the deliveries due, and the sender tries again a moment later: they do not wait
    for the sweeper (which no test runs here)."""
    from django.utils import timezone

    refused: list[int] = []
    claim_due = outbox.claim_due

    def refuse_the_first(limit, **kwargs):
        if not refused:
            refused.append(limit)
            raise OperationalError("database table is locked: webhooks_delivery")
        return claim_due(limit, **kwargs)

    monkeypatch.setattr(outbox, "claim_due", refuse_the_first)
    due = DeliveryFactory(subscription=SubscriptionFactory(url=receiver.url))
    sender.get().wake_at(timezone.now())
    assert wait_for(lambda: Delivery.objects.get(pk=due.pk).status == "succeeded", 15)
    assert len(refused) == 1 and len(receiver.requests) == 1
