"""django-q2 entry points: ids in, the work is done elsewhere."""

from __future__ import annotations

from . import dispatch, sweeper


def process_event(event_id: str) -> None:
    dispatch.process_event(event_id)


def deliver(delivery_ids: list[str], token: str, trigger: str = "automatic") -> None:
    dispatch.send_claimed(delivery_ids, token, trigger)


def sweep() -> None:
    sweeper.run()
