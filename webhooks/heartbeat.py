"""Heartbeats: the sweeper and the worker processes say, in the database, that they are
alive, so ``webhooks_health`` can tell from any host whether they are.

django-q2 keeps its own cluster statistics in the broker (or, with the ORM broker, in the
Django cache, which is per process unless the host configured a shared one): not an
answer every deployment can read. A row per process in the database is.

A beat is one UPDATE (an INSERT the first time), at most once every ``EVERY`` seconds per
process and key, in its own savepoint; it never raises: a worker or a sweep must not fail
because its heartbeat could not be written.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

logger = logging.getLogger("webhooks")

#: Seconds between two writes of one key by one process.
EVERY = 15.0
#: Worker rows not seen for this long are deleted (a new worker process prunes them).
FORGET_AFTER = timedelta(days=1)
SWEEPER = "sweeper"

_last: dict[str, float] = {}  # key -> time.monotonic() of its last write in this process


def worker_key() -> str:
    return f"worker:{socket.gethostname()}:{os.getpid()}"


def beat(key: str) -> None:
    """Record that ``key`` is alive now (throttled; never raises)."""
    now = time.monotonic()
    last = _last.get(key)
    if last is not None and now - last < EVERY:
        return
    _last[key] = now
    try:
        _write(key)
    except Exception:  # noqa: BLE001 - a heartbeat must never break the work it reports on
        logger.info("Could not record the heartbeat of %s.", key, exc_info=True)


def worker_beat() -> None:
    beat(worker_key())


def sweeper_beat() -> None:
    beat(SWEEPER)


def _write(key: str) -> None:
    from .models import Heartbeat

    seen_at = timezone.now()
    with transaction.atomic():  # a savepoint inside a caller's transaction
        if Heartbeat.objects.filter(key=key).update(seen_at=seen_at):
            return
    with transaction.atomic():
        # A new process: its row, and the rows of processes long gone.
        Heartbeat.objects.filter(
            key__startswith="worker:", seen_at__lt=seen_at - FORGET_AFTER
        ).delete()
        Heartbeat.objects.update_or_create(key=key, defaults={"seen_at": seen_at})
