"""django-q2 entry points: ids in, the work is done elsewhere."""

from __future__ import annotations

import uuid

from . import dispatch, retention, sweeper


def process_event(event_id: str) -> None:
    dispatch.process_event(event_id)


def process_events(event_ids: list[str]) -> None:
    dispatch.process_events(event_ids)


def deliver(delivery_ids: list[str], token: str, trigger: str = "automatic") -> None:
    # The token arrives as text; as a UUID it matches the lease, which is then released.
    dispatch.send_claimed(delivery_ids, uuid.UUID(str(token)), trigger)


def sweep() -> None:
    sweeper.run_scheduled()


def sweep_until(until: str) -> None:
    sweeper.continue_sweep(until)


def purge() -> None:
    retention.run_scheduled()
