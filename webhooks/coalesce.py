"""One event per change: the events a transaction has raised so far, per binding and object.

A host often saves one object several times in one transaction (Wagtail saves a page up to
three times to publish it). The first save that raises a binding's event INSERTs it, as
outside a transaction; a later save of the same object in the same transaction UPDATEs that
row's data instead of adding a second event. The database does the bookkeeping of
rollbacks: a rolled-back savepoint takes its INSERTs and UPDATEs with it, and an UPDATE
that finds no row (its INSERT was rolled back) becomes an INSERT again. So there are never
ghost events, and a single save still costs one INSERT.

What this module keeps is only which event row each (binding, object) got in the current
transaction. It lives in a ``transaction.on_commit`` callback: Django drops that callback
when the transaction (or the savepoint it was registered in) rolls back, and runs it, which
forgets everything, when the transaction commits.
"""

from __future__ import annotations

from django.db import connections, transaction

_ATTRIBUTE = "_webhooks_pending_events"


class PendingEvents:
    """The event ids raised in one transaction, by (binding, object pk)."""

    def __init__(self, key) -> None:
        self.key = key
        self.hooks: list = []  # the connection's list of commit hooks it is registered in
        #: object pk -> {id(binding): event id}
        self.ids: dict[object, dict[int, object]] = {}

    def __call__(self) -> None:  # committed
        self.ids.clear()

    def for_object(self, pk) -> dict[int, object]:
        return self.ids.setdefault(pk, {})


def _transaction_key(conn):
    """Which transaction is open on ``conn``, or None in autocommit.

    The atomic blocks of Django's TestCase are the test's, not the host's: a block opened
    inside them is where the host's transaction starts (it is a savepoint there, with an
    id of its own, so two blocks one after the other are two transactions)."""
    for depth, block in enumerate(conn.atomic_blocks):
        if not getattr(block, "_from_testcase", False):
            return depth, conn.savepoint_ids[depth - 1] if depth else None
    return None


def in_transaction(using: str) -> bool:
    return _transaction_key(connections[using]) is not None


def current(using: str, *, create: bool = True) -> PendingEvents | None:
    """The pending events of the transaction open on ``using`` (None in autocommit)."""
    conn = connections[using]
    key = _transaction_key(conn)
    if key is None:
        return None
    pending = getattr(conn, _ATTRIBUTE, None)
    if pending is not None and pending.key == key and _registered(pending, conn):
        return pending
    if not create:
        return None
    pending = PendingEvents(key)
    transaction.on_commit(pending, using=using, robust=True)
    pending.hooks = conn.run_on_commit
    setattr(conn, _ATTRIBUTE, pending)
    return pending


def _registered(pending: PendingEvents, conn) -> bool:
    """Whether ``pending`` still waits for this transaction's commit. Django replaces the
    list of commit hooks when a transaction ends and when a savepoint rolls back: the same
    list means the same transaction, at no cost; another list is searched once."""
    if conn.run_on_commit is pending.hooks:
        return True
    if any(hook[1] is pending for hook in conn.run_on_commit):
        pending.hooks = conn.run_on_commit
        return True
    return False
