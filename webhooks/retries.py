"""When to try again: the retry schedule, jitter, and ``Retry-After``."""

from __future__ import annotations

import random

from .conf import conf


def retry_delay(failed_automatic_attempts: int, retry_after: float | None = None) -> float | None:
    """Seconds until the next try after this many failed automatic attempts; None: give up."""
    schedule = list(conf.RETRY_SCHEDULE)
    index = failed_automatic_attempts - 1
    if index >= len(schedule):
        return None
    if retry_after is not None:
        # The receiver knows best when it can take more, within our bounds.
        return min(retry_after, conf.MAX_RETRY_AFTER)
    base = float(schedule[index])
    jitter = conf.RETRY_JITTER
    return max(0.0, base * (1 + random.uniform(-jitter, jitter)))
