"""A worker process gets ready before its first task, not during it.

django-q2 starts (and, after ``recycle`` tasks, restarts) each worker as a fresh process
that imports its task's modules, connects to the database and the broker, and builds the
encryption keys only when the first task arrives: measured on PostgreSQL + Redis, that
made the first event each worker handled arrive 30–180 ms after its commit instead of
~7 ms. ``post_spawn`` runs in the new worker before it takes any task, so it pays these
costs there instead, while nothing waits on it.
"""

from __future__ import annotations

import logging

logger = logging.getLogger("webhooks")


def warm_worker(**kwargs) -> None:
    """django-q2's ``post_spawn`` receiver. Never raises: a step that fails (the database
    or the broker down at that moment) is left to the first task, as before."""
    from . import delivery, dispatch, encryption, heartbeat, outbox, sender, tasks  # noqa: F401

    sender.mark_worker_process()  # tasks here hand their deliveries to the process's sender

    # The fan-out's reads connect to the database; the broker hands out further batches;
    # the TLS context reads the trust store (~18 ms).
    steps = (outbox.warm_queries, encryption.multifernet, outbox.warm_broker, delivery.tls_context)
    for step in steps:
        try:
            step()
        except Exception:  # noqa: BLE001 - the worker must start whatever happens here
            logger.info("Worker warm-up: %s failed; the first task does it.", step.__name__)
    report_undecryptable_secrets()
    heartbeat.worker_beat()  # seen from its start, not only from its first task


def report_undecryptable_secrets() -> None:
    """Log (once per worker start) when the keys cannot decrypt stored secrets: the worker
    goes on, and sends what it can, but the operator should hear of it before the failures."""
    from . import checks

    try:
        problem = checks.stored_secrets_problem()
    except Exception:  # noqa: BLE001 - the worker must start whatever happens here
        logger.info("Worker warm-up: the check of the stored secrets failed.", exc_info=True)
        return
    if problem:
        logger.error("%s %s (webhooks.W004)", problem, checks.UNDECRYPTABLE_HINT)
