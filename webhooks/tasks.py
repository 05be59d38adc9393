"""django-q2 entry points: ids in, the work is done elsewhere.

Each one first records that this worker process is alive (``heartbeat``: throttled, never
raises), so ``webhooks_health`` counts the workers seen recently.
"""

from __future__ import annotations

import uuid

from . import dispatch, heartbeat, removal, retention, sweeper


def process_event(event_id: str) -> None:
    heartbeat.worker_beat()
    dispatch.process_event(event_id)


def process_events(event_ids: list[str]) -> None:
    heartbeat.worker_beat()
    dispatch.process_events(event_ids)


def deliver(delivery_ids: list[str], token: str, trigger: str = "automatic") -> None:
    heartbeat.worker_beat()
    # The token arrives as text; as a UUID it matches the lease, which is then released.
    # In a worker the requests go to the process's sender and the task returns at once.
    dispatch.send_claimed(delivery_ids, uuid.UUID(str(token)), trigger, background=True)


def sweep() -> None:
    heartbeat.worker_beat()
    sweeper.run_scheduled()


def sweep_until(until: str) -> None:
    heartbeat.worker_beat()
    sweeper.continue_sweep(until)


def purge() -> None:
    heartbeat.worker_beat()
    retention.run_scheduled()


def delete_logs(subscription_ids: list[str]) -> None:
    """The delivery logs of webhooks just deleted (``webhooks.removal``)."""
    heartbeat.worker_beat()
    removal.clear(subscription_ids)
