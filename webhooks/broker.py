"""A django-q2 broker for when the broker is the database: the outbox is the queue.

With django-q2's ORM broker every event would cost the host a second INSERT (the task
row in ``django_q_ormq``) after its commit. With this broker the host writes only the
Event; the workers' pusher polls the Event table itself and hands out batches of events
not yet fanned out as ``webhooks.tasks.process_events`` tasks. Other tasks (the sweep,
deliveries, resends) go through the ORM queue as before and are handed out first.

    Q_CLUSTER = {"orm": "default", "broker_class": "webhooks.broker.OutboxBroker", …}

A batch of events is claimed (``Event.claimed_until``) for django-q2's ``retry``
seconds, like an ORM task waiting for its acknowledgement: two clusters never get the
same events at once, and events of a worker killed mid-task are handed out again when
their claim expires. A doubled fan-out would be harmless anyway (``fan_out_many`` skips
events already fanned out).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import lru_cache
from time import sleep

from django.db import close_old_connections, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.module_loading import import_string
from django_q.brokers.orm import ORM
from django_q.conf import Conf
from django_q.humanhash import uuid
from django_q.signing import SignedPackage

from .conf import conf

logger = logging.getLogger("webhooks")

TASK = "webhooks.tasks.process_events"
#: Acknowledgement ids of event batches start with this (those of ORM tasks are numbers).
EVENTS_ACK_PREFIX = "webhooks-events:"


def unclaimed(now) -> Q:
    return Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)


class OutboxBroker(ORM):
    """django-q2's ORM broker that also hands out the events waiting in the outbox."""

    def dequeue(self):
        tasks = self._orm_tasks()
        if tasks is not None:
            return tasks
        batch = self._event_task()
        if batch:
            return [batch]
        sleep(Conf.POLL)  # nothing to do: spare the CPU (and the database)
        return None

    def _orm_tasks(self):
        """django-q2's ORM dequeue, without its sleep: None when the queue is empty."""
        tasks = self.get_connection().filter(key=self.list_key, lock__lt=timezone.now())[
            : Conf.BULK
        ]
        if not tasks:
            return None
        handed = []
        for task in tasks:
            # Compare-and-set: another cluster may have taken it since the read.
            taken = (
                self.get_connection()
                .filter(id=task.id, lock=task.lock)
                .update(lock=self.timeout(task))
            )
            if taken:
                handed.append((task.pk, task.payload))
        return handed

    def _event_task(self):
        """Claim a batch of events not yet fanned out; the signed task that fans them out."""
        if not self.serves_webhooks():
            return None
        try:
            ids = claim_events(max(1, conf.BATCH_SIZE), using=Conf.ORM)
        except Exception:  # noqa: BLE001 - a pusher that raises stops for 10 s; poll again
            logger.exception("Could not claim events to fan out; trying again.")
            close_old_connections()
            return None
        if not ids:
            return None
        name, task_id = uuid()
        task = {
            "id": task_id,
            "name": name,
            "func": TASK,
            "args": ([str(pk) for pk in ids],),
            "kwargs": {},
            "started": timezone.now(),
        }
        if Conf.ACK_FAILURES:
            task["ack_failure"] = True
        if Conf.CACHED:
            task["cached"] = Conf.CACHED
        return (f"{EVENTS_ACK_PREFIX}{task_id}", SignedPackage.dumps(task))

    def serves_webhooks(self) -> bool:
        """Only the cluster webhooks enqueue on (``WEBHOOKS_QUEUE_NAME``) takes events."""
        return self.list_key == (conf.QUEUE_NAME or Conf.CLUSTER_NAME)

    def acknowledge(self, task_id):
        # A batch of events needs no acknowledgement: fanned out, they are done; if the
        # task failed, their claim expires and they are handed out again.
        if not _is_event_batch(task_id):
            return super().acknowledge(task_id)
        return None

    def fail(self, task_id):
        if not _is_event_batch(task_id):
            return super().fail(task_id)
        return None

    def delete(self, task_id):
        if not _is_event_batch(task_id):
            return super().delete(task_id)
        return None

    def queue_size(self) -> int:
        from .models import Event

        waiting = (
            Event.objects.using(Conf.ORM)
            .filter(unclaimed(timezone.now()), fanned_out_at__isnull=True)
            .count()
        )
        return super().queue_size() + waiting


def _is_event_batch(task_id) -> bool:
    return isinstance(task_id, str) and task_id.startswith(EVENTS_ACK_PREFIX)


def claim_events(limit: int, *, using: str = "default", now=None) -> list:
    """Claim up to ``limit`` events not yet fanned out, oldest first; returns their ids.

    A plain read first, so an idle poll takes no lock (on SQLite, no write lock at all).
    The claim itself locks its rows, skipping rows locked by another claimer (PostgreSQL,
    MariaDB/MySQL); SQLite takes the database's write lock at BEGIN (the
    ``transaction_mode`` check E011 asks for), so claims there are one at a time.
    """
    from .models import Event

    now = now or timezone.now()
    waiting = Event.objects.using(using).filter(unclaimed(now), fanned_out_at__isnull=True)
    if not waiting.exists():
        return []
    with transaction.atomic(using=using):
        ids = list(
            waiting.order_by("occurred_at")
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)[:limit]
        )
        if ids:
            Event.objects.using(using).filter(pk__in=ids).update(
                claimed_until=now + timedelta(seconds=Conf.RETRY)
            )
    return ids


@lru_cache(maxsize=8)
def _is_outbox_broker(path: str) -> bool:
    try:
        return issubclass(import_string(path), OutboxBroker)
    except (ImportError, TypeError):
        return False


def workers_poll_outbox() -> bool:
    """Whether django-q2's workers take events from the outbox (this broker is configured),
    so that an event needs no enqueue at all. Never in sync mode: nothing polls there."""
    return bool(Conf.BROKER_CLASS) and not Conf.SYNC and _is_outbox_broker(Conf.BROKER_CLASS)
