"""The worker process's sender, in this process: tasks hand deliveries over and return,
and wait only while the process has ``WEBHOOKS_MAX_IN_FLIGHT`` queued or in flight.
(On a real cluster: tests/reliability/test_sender.py.)"""

from __future__ import annotations

import threading
import time

import pytest
from django.test import override_settings

import webhooks
from tests.factories import SubscriptionFactory
from tests.test_concurrency import GatedReceiver
from webhooks import outbox, sender, tasks
from webhooks.models import Delivery

pytestmark = pytest.mark.django_db(transaction=True)


def wait_for(check, seconds: float = 10) -> bool:
    until = time.monotonic() + seconds
    while not check():
        if time.monotonic() > until:
            return False
        time.sleep(0.02)
    return True


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
