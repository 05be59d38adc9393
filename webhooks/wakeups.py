"""Waking up for work that becomes due later: retries, and deliveries a rate limit postponed.

``due_at(when)`` says "a delivery becomes due at ``when``". Until the per-process timer is
built (issue 19: retries keep their schedule), it does nothing and the sweeper picks such
deliveries up at its next poll.
"""

from __future__ import annotations

from datetime import datetime


def due_at(when: datetime) -> None:
    """A pending delivery becomes due at ``when``: have it claimed then (±1 s), if possible."""
