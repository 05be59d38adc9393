"""Waking up for work that becomes due later: retries, and deliveries a rate limit postponed.

``due_at(when)`` says "a delivery becomes due at ``when``". In a worker process whose
sender runs (``webhooks.sender``), its coordinator thread keeps these times and, at the
earliest, claims what is due (``outbox.claim_due``) and sends it: an attempt due at T
starts within about a second of T, and no worker sits polling while nothing is due.
Elsewhere (sync mode, the web processes, a worker that has sent nothing yet) it does
nothing, and the sweeper picks such deliveries up at its next poll: it stays the fallback,
for a worker that recycled or died with times registered too.
"""

from __future__ import annotations

from datetime import datetime


def due_at(when: datetime) -> None:
    """A pending delivery becomes due at ``when``: have it claimed then (±1 s), if possible."""
    due_at_each([when])


def due_at_each(times) -> None:
    """``due_at`` for several times (the retries of one recorded group)."""
    from . import sender

    running = sender.running()
    if running is None:
        return
    for when in sorted(set(times)):
        running.wake_at(when)
