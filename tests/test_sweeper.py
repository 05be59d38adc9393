"""The sweeper survives database errors, holds no worker when nothing is due, and a real
``qcluster`` stops within 10 s of SIGTERM, mid-sweep, with nothing lost."""

import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
from django.db import OperationalError
from django.utils import timezone

from tests.factories import DeliveryFactory, EventFactory, SubscriptionFactory
from tests.receiver import Answer
from tests.test_serve import ROOT, _group_members, example_env, manage, wait_for
from tests.testapp.models import Article
from webhooks import outbox, sweeper, tasks
from webhooks.models import Delivery


@pytest.mark.django_db
def test_the_sweeper_survives_database_errors_in_its_polling_loop(
    receiver, subscribe, commit, settings, monkeypatch
):
    settings.WEBHOOKS_POLL_INTERVAL = 0.2
    subscribe(receiver, ["article.created"])
    receiver.answer(Answer(500))
    with commit():
        Article.objects.create(title="x")
    Delivery.objects.update(next_attempt_at=timezone.now())  # the retry is due
    real, calls = sweeper.sweep_once, []

    def flaky(**kwargs):
        calls.append(1)
        if len(calls) <= 2:
            raise OperationalError("server closed the connection unexpectedly")
        return real(**kwargs)

    monkeypatch.setattr(sweeper, "sweep_once", flaky)
    with commit():
        report = sweeper.run(duration=1.5)
    assert report.errors == 2 and len(calls) > 3  # it went on polling
    assert Delivery.objects.get().status == Delivery.Status.SUCCEEDED


@pytest.mark.django_db
def test_a_sweep_keeps_the_brokers_queue_short_and_leaves_the_rest_due(settings, monkeypatch):
    """Retries owed to failing receivers wait in the database, not in the broker's queue
    (first come, first served) ahead of the host's new events: a poll enqueues only while
    the queue holds fewer than ``QUEUED_TASKS_PER_WORKER`` tasks per worker."""
    from django_q.conf import Conf

    settings.WEBHOOKS_BATCH_SIZE = 2
    webhook = SubscriptionFactory()
    for _ in range(12):
        DeliveryFactory(subscription=webhook, next_attempt_at=timezone.now() - timedelta(1))
    monkeypatch.setattr(Conf, "SYNC", False)  # tasks go through the real broker
    monkeypatch.setattr(Conf, "WORKERS", 3)
    broker = outbox._get_broker()
    tasks_queued = lambda: sweeper._tasks_queued(broker)  # noqa: E731
    leased = Delivery.objects.filter(lease_token__isnull=False)
    broker.purge_queue()
    try:
        assert sweeper.QUEUED_TASKS_PER_WORKER == 1
        assert sweeper.sweep_once().deliveries_enqueued == 6  # three tasks of two
        assert tasks_queued() == 3 and leased.count() == 6
        assert sweeper.sweep_once().deliveries_enqueued == 0, "the queue is full"
        broker.purge_queue()  # the workers took them
        assert sweeper.sweep_once().deliveries_enqueued == 6
        assert leased.count() == 12
    finally:
        broker.purge_queue()


@pytest.mark.django_db
def test_a_lost_events_healthy_deliveries_go_ahead_of_the_failing_backlog(settings, monkeypatch):
    """Events whose fan-out task was lost (a worker recycled, the broker down): the sweep
    hands their healthy webhooks' deliveries to the workers at once, while the queue is
    kept for the failing webhooks' due deliveries, oldest first."""
    from django_q.conf import Conf

    settings.WEBHOOKS_BATCH_SIZE = 2
    healthy, failing = SubscriptionFactory(all_events=True), SubscriptionFactory(all_events=True)
    type(failing).objects.filter(pk=failing.pk).update(consecutive_failures=5)
    for _ in range(12):  # what the failing webhook already owes
        DeliveryFactory(subscription=failing, next_attempt_at=timezone.now() - timedelta(1))
    lost = EventFactory(type="article.shared", occurred_at=timezone.now() - timedelta(minutes=1))
    monkeypatch.setattr(Conf, "SYNC", False)
    monkeypatch.setattr(Conf, "WORKERS", 4)
    broker = outbox._get_broker()
    broker.purge_queue()
    try:
        report = sweeper.sweep_once()
        assert report.events_fanned_out == 1
        new = Delivery.objects.filter(event=lost)
        assert new.get(subscription=healthy).lease_token is not None, "sent at once"
        assert new.get(subscription=failing).lease_token is None, "waits its turn"
        # One task for the healthy delivery, three for six of the backlog: four in all.
        assert report.deliveries_enqueued == 1 + 6 and sweeper._tasks_queued(broker) == 4
    finally:
        broker.purge_queue()


@pytest.mark.django_db
def test_a_scheduled_sweep_with_nothing_ahead_frees_its_worker_at_once(settings):
    settings.WEBHOOKS_SWEEP_DURATION = 50
    sweeper.ensure_schedule()
    started = time.monotonic()
    tasks.sweep()
    assert time.monotonic() - started < 3  # not the ~50 s it used to poll


@pytest.mark.django_db
def test_a_sweep_with_work_ahead_polls_in_short_slices(receiver, subscribe, settings, monkeypatch):
    """Each slice is a short task; the next is handed over through the queue."""
    settings.WEBHOOKS_POLL_INTERVAL = 0.2
    sub = subscribe(receiver, all_events=True)
    Delivery.objects.create(
        event=EventFactory(),
        subscription=sub,
        next_attempt_at=timezone.now() + timedelta(seconds=20),
    )
    handed_over = []
    monkeypatch.setattr(outbox, "enqueue", lambda func, *args: handed_over.append(func) or True)
    started = time.monotonic()
    sweeper.run_slice(timezone.now() + timedelta(seconds=40))
    assert time.monotonic() - started < sweeper.SLICE_SECONDS + 2
    assert handed_over == ["webhooks.tasks.sweep_until"]


def test_qcluster_stops_within_10_s_of_sigterm_mid_sweep_and_loses_nothing(tmp_path, receiver):
    env = example_env(tmp_path)
    manage(env, "migrate", "--noinput", capture_output=True)
    manage(
        env,
        "shell",
        "-c",
        "from webhooks.models import Subscription; "
        f"Subscription.objects.create(url='{receiver.url}', all_events=True); "
        # as django-q2 leaves it after firing the sweep: the next one is a minute away
        "from datetime import timedelta; from django.utils import timezone; "
        "from django_q.models import Schedule; "
        "Schedule.objects.update(next_run=timezone.now() + timedelta(seconds=60))",
    )
    receiver.answer(Answer(500))  # the first try fails: a retry is due 5 s later

    def start_cluster():
        process = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        lines = []
        threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True).start()
        return process, lines

    cluster, lines = start_cluster()
    try:
        wait_for(lambda: any("running" in line for line in lines), 60, "the cluster")
        manage(
            env,
            "shell",
            "-c",
            "import webhooks; webhooks.send_event('webhook.test', {'n': 1}); "
            "from django_q.tasks import async_task; async_task('webhooks.tasks.sweep')",
        )
        wait_for(lambda: receiver.requests, 60, "the first try")
        wait_for(lambda: any("webhooks.tasks.sweep" in line for line in lines), 30, "a sweep")
        time.sleep(1)  # the sweep is polling: a retry is due in a few seconds
        stopping = time.monotonic()
        cluster.send_signal(signal.SIGTERM)
        cluster.wait(timeout=60)
        took = time.monotonic() - stopping
        wait_for(lambda: not _group_members(cluster.pid), 20, "every cluster process to exit")
    finally:
        if cluster.poll() is None:
            cluster.kill()
    print(f"qcluster stopped {took:.1f} s after SIGTERM")
    assert took < 10, "".join(lines[-30:])

    # Nothing lost: a new cluster sends the retry (the sweep that was stopped left it due).
    receiver.default = Answer(200)
    cluster, lines = start_cluster()
    try:
        manage(env, "shell", "-c", "from webhooks import tasks; tasks.sweep()")
        wait_for(lambda: len(receiver.requests) >= 2, 60, "the retry")
        time.sleep(1)
    finally:
        cluster.send_signal(signal.SIGTERM)
        try:
            cluster.wait(timeout=30)
        except subprocess.TimeoutExpired:
            cluster.kill()
    assert len(receiver.requests) == 2
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1
