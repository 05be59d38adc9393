"""The outbox broker: workers take events from the Event table, the host pays one INSERT.

``webhooks.broker.OutboxBroker`` is django-q2's ORM broker plus the outbox: its pusher
hands out ORM tasks first, then batches of events not yet fanned out, each claimed so
that no two workers get the same events at once. Real clusters are in
``tests/reliability/test_outbox_broker_cluster.py``.
"""

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_q.conf import Conf
from django_q.models import OrmQ
from django_q.signing import SignedPackage

from tests.testapp.models import Article
from webhooks import sweeper, tasks
from webhooks.broker import OutboxBroker
from webhooks.models import Delivery, Event

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def workers_poll(monkeypatch):
    """A host configured with the outbox broker and real workers (not sync mode)."""
    monkeypatch.setattr(Conf, "SYNC", False)
    monkeypatch.setattr(Conf, "BROKER_CLASS", "webhooks.broker.OutboxBroker")
    monkeypatch.setattr(Conf, "POLL", 0.01)


def broker() -> OutboxBroker:
    return OutboxBroker(list_key=Conf.CLUSTER_NAME)


def unpack(handed) -> tuple:
    [(ack_id, package)] = handed
    return ack_id, SignedPackage.loads(package)


def run(task: dict) -> None:
    """What a worker does with a task (the function is a dotted path)."""
    assert task["func"] == "webhooks.tasks.process_events"
    tasks.process_events(*task["args"], **task["kwargs"])


def test_a_bound_save_is_one_insert_in_the_transaction_and_nothing_after(workers_poll):
    with CaptureQueriesContext(connection) as captured, transaction.atomic():
        Article.objects.create(title="one statement")
    statements = [q["sql"] for q in captured.captured_queries]
    verbs = [s.split()[0].upper() for s in statements]
    assert verbs[-1] == "COMMIT", statements  # nothing after the commit
    assert set(verbs) <= {"BEGIN", "INSERT", "COMMIT"}, statements
    inserted = [s.split()[2].strip('"`') for s in statements if s.startswith("INSERT")]
    assert inserted == ["testapp_article", "webhooks_event"]
    assert not OrmQ.objects.exists()  # no task row: the workers read the outbox itself
    assert Event.objects.get().fanned_out_at is None


def test_waiting_events_are_handed_out_as_one_task_that_delivers_them(
    workers_poll, receiver, subscribe
):
    subscribe(receiver, ["article.created"])
    with transaction.atomic():
        for n in range(3):
            Article.objects.create(title=f"a{n}")
    ack_id, task = unpack(broker().dequeue())
    events = Event.objects.values_list("pk", flat=True)
    assert sorted(task["args"][0]) == sorted(str(pk) for pk in events)
    run(task)
    broker().acknowledge(ack_id)
    assert sorted(r.json()["data"]["title"] for r in receiver.requests) == ["a0", "a1", "a2"]
    assert Delivery.objects.filter(status="succeeded").count() == 3
    assert broker().dequeue() is None  # nothing left to hand out


def test_two_clusters_never_get_the_same_events_until_a_claim_expires(workers_poll):
    with transaction.atomic():
        Article.objects.create(title="claimed")
    first, second = broker(), broker()
    _, task = unpack(first.dequeue())
    assert second.dequeue() is None  # claimed by the first cluster's worker
    # That worker died: once the claim expires the events are handed out again.
    Event.objects.update(claimed_until=timezone.now() - timedelta(seconds=1))
    _, again = unpack(second.dequeue())
    assert again["args"] == task["args"]


def test_orm_tasks_are_handed_out_before_events(workers_poll):
    from django_q.tasks import async_task

    with transaction.atomic():
        Article.objects.create(title="waits its turn")
    async_task("webhooks.tasks.sweep", broker=broker())
    ack_id, task = unpack(broker().dequeue())
    assert task["func"] == "webhooks.tasks.sweep"
    broker().acknowledge(ack_id)
    assert not OrmQ.objects.exists()
    _, task = unpack(broker().dequeue())
    assert task["func"] == "webhooks.tasks.process_events"


@override_settings(WEBHOOKS_BATCH_SIZE=2)
def test_a_burst_is_handed_out_in_batches_oldest_first(workers_poll):
    with transaction.atomic():
        for n in range(5):
            Article.objects.create(title=f"b{n}")
    ids = [str(pk) for pk in Event.objects.order_by("occurred_at").values_list("pk", flat=True)]
    batches = [unpack(broker().dequeue())[1]["args"][0] for _ in range(3)]
    assert batches == [ids[0:2], ids[2:4], ids[4:5]]


def test_acknowledging_or_failing_an_event_batch_touches_no_orm_task(workers_poll):
    with transaction.atomic():
        Article.objects.create(title="x")
    from django_q.tasks import async_task

    b = broker()
    async_task("webhooks.tasks.sweep", broker=b)
    ack_id, _ = unpack(b.dequeue())  # the ORM task
    events_ack, _ = unpack(b.dequeue())
    b.acknowledge(events_ack)
    b.fail(events_ack)
    assert OrmQ.objects.filter(pk=ack_id).exists()


@override_settings(WEBHOOKS_QUEUE_NAME="webhooks-only")
def test_only_the_cluster_webhooks_enqueue_on_takes_events(workers_poll):
    with transaction.atomic():
        Article.objects.create(title="not for the default cluster")
    assert broker().dequeue() is None
    _, task = unpack(OutboxBroker(list_key="webhooks-only").dequeue())
    assert task["func"] == "webhooks.tasks.process_events"


def test_a_database_error_while_claiming_does_not_stop_the_pusher(workers_poll, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr("webhooks.broker.claim_events", broken)
    with transaction.atomic():
        Article.objects.create(title="later")
    assert broker().dequeue() is None  # logged; the next poll tries again


def test_the_sweeper_leaves_claimed_events_to_their_worker(workers_poll):
    with transaction.atomic():
        Article.objects.create(title="in a worker's hands")
    broker().dequeue()
    later = timezone.now() + timedelta(seconds=30)  # past the fan-out grace, claim still live
    assert sweeper.sweep_once(now=later).events_fanned_out == 0
    # The claim expired (a worker died and no cluster is running): the sweeper repairs it.
    Event.objects.update(claimed_until=timezone.now() - timedelta(seconds=1))
    assert sweeper.sweep_once(now=later).events_fanned_out == 1
    assert Event.objects.get().fanned_out_at is not None


def test_without_workers_polling_the_save_still_enqueues_after_commit(monkeypatch):
    # Sync mode (this suite) or another broker: the outbox broker's absence is not a loss.
    monkeypatch.setattr(Conf, "SYNC", True)
    with transaction.atomic():
        Article.objects.create(title="inline")
    assert Event.objects.get().fanned_out_at is not None


def test_a_worker_filling_its_batch_leaves_events_claimed_by_another(workers_poll):
    from webhooks import outbox

    with transaction.atomic():
        Article.objects.create(title="claimed")
    broker().dequeue()
    with transaction.atomic():
        Article.objects.create(title="free")
    outbox.fan_out_and_lease([], oldest_others=10)
    assert Event.objects.get(data__title="free").fanned_out_at is not None
    assert Event.objects.get(fanned_out_at__isnull=True).claimed_until is not None
