"""The outbox: writing Events in the host's transaction, fanning out, claiming due work.

The host pays one INSERT per event. Everything else happens in a worker: with the
outbox broker (``webhooks.broker``) the workers poll the Event table itself; with
another broker an enqueue follows the commit (``_after_commit``). When that enqueue is
lost (broker down, process killed) the sweeper finds the Event by its empty
``fanned_out_at``.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from datetime import datetime, timedelta
from functools import partial

from django.db import connection, connections, router, transaction
from django.db.models import Q
from django.db.models.constants import OnConflict
from django.utils import timezone

from . import plans, rows, tracing
from .builtin_events import OPERATIONAL_TYPES
from .conf import conf
from .exceptions import InvalidPayload, UnknownEventType
from .handoff import Handoff
from .ids import uuid7
from .models import Delivery, Event, EventType, Subscription
from .registry import registry
from .validation import to_json_text

logger = logging.getLogger("webhooks")

SCOPE_LENGTH = Event._meta.get_field("scope").max_length
SOURCE_ID_LENGTH = Event._meta.get_field("source_id").max_length


def record_event(event_type: str, data, *, scope="", source=None) -> Event:
    """Write one Event in the current transaction; workers fan it out after commit.

    Raises :class:`InvalidPayload` (before writing) for data that is not JSON; nothing the
    webhooks' configuration or state can be makes it fail.
    """
    row = _event_row(event_type, data, scope, source)
    write_event_row(row)
    event = Event(**{name: row[name] for name in _INSERTED if name != "data"})
    event.data = json.loads(row["data"])
    event.trace_context = row.get("trace_context")
    event._state.adding = False
    event._state.db = row["using"]
    return event


def write_event(event_type: str, data, *, scope="", source=None) -> uuid.UUID:
    """``record_event`` for a caller that needs no Event instance back (the receivers);
    returns the new event's id."""
    row = _event_row(event_type, data, scope, source)
    write_event_row(row)
    return row["id"]


def rewrite_event(event_id, event_type: str, data, *, scope="", using: str) -> bool:
    """Replace the data and scope of an event written earlier in the open transaction
    (``coalesce``): one UPDATE. False when its row is gone (a rolled-back savepoint took
    it), so the caller writes a new one."""
    text, scope = _checked(event_type, data, scope)
    conn = connections[using]
    quote = conn.ops.quote_name
    meta = Event._meta
    sql = (
        f"UPDATE {quote(meta.db_table)} SET {quote(meta.get_field('data').column)} = %s, "
        f"{quote(meta.get_field('scope').column)} = %s WHERE {quote(meta.pk.column)} = %s"
    )
    with conn.cursor() as cursor:
        cursor.execute(sql, (text, scope, meta.pk.get_db_prep_value(event_id, conn)))
        return cursor.rowcount > 0


#: The Event columns the host's INSERT writes (the others start empty); while the host
#: traces, ``trace_context`` too (``tracing.publishes``).
_INSERTED = ("id", "type", "data", "scope", "source_model", "source_id", "occurred_at")
_insert_sql: dict[tuple[str, bool], str] = {}


def _checked(event_type: str, data, scope) -> tuple[str, str]:
    """The payload's JSON text and the scope as stored, or InvalidPayload."""
    text = to_json_text(data, event_type=event_type)
    scope = "" if scope is None else str(scope)
    if len(scope) > SCOPE_LENGTH:
        raise InvalidPayload(
            f"The scope of a {event_type!r} event is {len(scope)} characters long; "
            f"at most {SCOPE_LENGTH} are stored."
        )
    return text, scope


def _event_row(event_type: str, data, scope, source) -> dict:
    text, scope = _checked(event_type, data, scope)
    return {
        "id": uuid7(),  # time-ordered: webhooks.ids
        "type": event_type,
        "data": text,
        "scope": scope,
        "source_model": source._meta.label_lower if source is not None else "",
        # A very long primary key (a natural key) is cut rather than failing the host's save.
        "source_id": str(source.pk)[:SOURCE_ID_LENGTH] if source is not None else "",
        "occurred_at": timezone.now(),
        "using": router.db_for_write(Event),
    }


@tracing.publishes
def write_event_row(row: dict) -> None:
    """One plain INSERT, with the payload's JSON text as it was validated: the host pays
    for neither the ORM's save machinery nor a second serialisation of the payload. Then
    whatever must follow the commit (``_after_commit``)."""
    using = row["using"]
    conn = connections[using]
    traced = "trace_context" in row
    sql = _insert_sql.get((conn.vendor, traced))
    if sql is None:
        quote = conn.ops.quote_name
        names = (*_INSERTED, "trace_context") if traced else _INSERTED
        columns = ", ".join(quote(Event._meta.get_field(name).column) for name in names)
        placeholders = ", ".join(["%s"] * len(names))
        sql = f"INSERT INTO {quote(Event._meta.db_table)} ({columns}) VALUES ({placeholders})"
        _insert_sql[(conn.vendor, traced)] = sql
    params = (
        Event._meta.pk.get_db_prep_value(row["id"], conn),
        row["type"],
        row["data"],
        row["scope"],
        row["source_model"],
        row["source_id"],
        conn.ops.adapt_datetimefield_value(row["occurred_at"]),
    )
    if traced:
        params += (row["trace_context"],)
    with conn.cursor() as cursor:
        cursor.execute(sql, params)
    _after_commit(str(row["id"]), using)


FAN_OUT_TASK = "webhooks.tasks.process_events"


def _after_commit(event_id: str, using: str) -> None:
    """How the workers learn of the event once the host's transaction commits.

    - the outbox broker (``webhooks.broker.OutboxBroker``): nothing to do, they poll it;
    - django-q2's sync mode (tests): the task runs inline, as the host's own work;
    - the plain ORM broker: an enqueue after commit (a second INSERT: system check W003);
    - a network broker (Redis…): the id is handed to this process's background thread, so
      no request waits on the network.
    """
    from django_q.conf import Conf

    from .broker import workers_poll_outbox

    if workers_poll_outbox():
        return
    if Conf.SYNC or (Conf.ORM and not Conf.BROKER_CLASS):
        callback = partial(enqueue, FAN_OUT_TASK, [event_id])
    else:
        # Started now, the thread connects to the broker while the host's transaction goes
        # on: the first event of a process does not wait for it after the commit.
        _fan_out_handoff.start()
        callback = partial(_fan_out_handoff.submit, event_id)
    transaction.on_commit(callback, using=using, robust=True)


def send_event(event_type: str, data, *, scope=None) -> Event:
    """Record an event raised from code rather than by a model save (e.g. ``invite.sent``).

    Raises only for a mistake at the call site, before anything is written:
    :class:`UnknownEventType` for a type not declared in code, :class:`InvalidPayload` for
    data that is not JSON (see ``validation.to_json_text``).
    """
    if event_type not in registry.event_types:
        raise UnknownEventType(
            f"Unknown event type {event_type!r}. Declared types: {', '.join(registry.names())}."
        )
    # Whether the type is switched on (or synced at all) is the webhooks' state, not a
    # mistake of the caller: the event is recorded and the fan-out delivers it to nobody.
    return record_event(event_type, data, scope=scope)


_broker = {"down_until": 0.0}


def _get_broker():
    """This process's django-q2 broker, made once: ``async_task`` would otherwise open a new
    broker (for Redis a new connection) on every call, which costs more than the save."""
    from django_q.brokers import get_broker

    key = (os.getpid(), conf.QUEUE_NAME)
    if _broker.get("key") != key:
        _broker["instance"] = get_broker(conf.QUEUE_NAME)
        _broker["key"] = key
    return _broker["instance"]


def warm_broker() -> None:
    """Import django-q2's enqueue and connect this process's broker now, not in the first
    enqueue (a worker's warm-up, the handoff thread's start). Raises if the broker is down."""
    from django_q.conf import Conf
    from django_q.tasks import async_task  # noqa: F401  (its import is the cost)

    if not Conf.SYNC:
        _get_broker().ping()


def _enqueue_fan_out(event_ids: list) -> bool:
    return enqueue(FAN_OUT_TASK, [str(pk) for pk in event_ids])


_fan_out_handoff = Handoff(_enqueue_fan_out, name="webhooks-enqueue", prepare=warm_broker)


def enqueue(func: str, *args) -> bool:
    """Hand a task to django-q2. Never raises: a lost enqueue is repaired by the sweeper.

    After a broker failure, enqueues in this process are skipped at once for
    ``WEBHOOKS_BROKER_BACKOFF`` seconds, so a down broker does not add its connection
    timeout to every host save.
    """
    from django_q.conf import Conf
    from django_q.tasks import async_task

    if time.monotonic() < _broker["down_until"]:
        logger.info("Broker marked down; %s%r left to the sweeper.", func, args)
        return False
    try:
        async_task(func, *args, cluster=conf.QUEUE_NAME, broker=_get_broker())
    except Exception:  # noqa: BLE001 - any broker failure must stay out of the host's request
        if not Conf.SYNC:  # in sync mode the task itself raised, not the broker
            _broker["down_until"] = time.monotonic() + conf.BROKER_BACKOFF
        logger.warning(
            "Could not enqueue %s%r; the sweeper will retry it.", func, args, exc_info=True
        )
        return False
    return True


def fan_out(event_id) -> list:
    """Create one Delivery per matching subscription, once. Returns the new deliveries' ids."""
    return fan_out_many([event_id])


def fan_out_many(event_ids, *, skip_locked: bool = False) -> list:
    """``fan_out`` for several events in one transaction and a constant number of queries.

    Events already fanned out (or, with ``skip_locked``, being fanned out by another worker
    on PostgreSQL) are left alone, so calling this twice, or from two workers, is harmless.
    """
    return [d.pk for d in _fan_out(list(event_ids), skip_locked=skip_locked)]


def fan_out_and_lease(
    event_ids, *, oldest_others: int = 0, lease_failing: bool = True
) -> tuple[uuid.UUID, list]:
    """Fan out these events, and up to ``oldest_others`` other events still waiting (oldest
    first), creating their deliveries already leased: the first ``WEBHOOKS_BATCH_SIZE`` to
    the returned token, each further batch to a token of its own.

    ``lease_failing=False``: deliveries of failing webhooks (a failure streak) are created
    due and not leased, for a worker's sender to claim as it has room (``webhooks.sender``),
    and the batches hold healthy webhooks' deliveries only.

    The deliveries come back with their event and subscription attached, ready to send:
    no claim, no lease renewal and no re-read between the fan-out and the requests. They
    are new rows of events locked here and not yet fanned out, so nobody else holds them.
    Events being fanned out by another worker (PostgreSQL, MariaDB) are skipped.
    """
    token = uuid.uuid4()
    deliveries = _fan_out(
        list(event_ids),
        skip_locked=True,
        others=oldest_others,
        token=token,
        lease_failing=lease_failing,
    )
    return token, deliveries


def any_waiting(event_ids) -> bool:
    """Whether any of these events is not fanned out yet: one read by primary key, in no
    transaction and locking nothing (a fan-out task's check before it takes any lock).
    An event being fanned out by another worker right now still counts as waiting."""
    if not event_ids:
        return False
    q, meta = connection.ops.quote_name, Event._meta
    pk = meta.pk
    sql = (
        f"SELECT 1 FROM {q(meta.db_table)} WHERE {q('fanned_out_at')} IS NULL "
        f"AND {q(pk.column)} IN ({', '.join(['%s'] * len(event_ids))}) LIMIT 1"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [pk.get_db_prep_value(i, connection) for i in event_ids])
        return cursor.fetchone() is not None


def _fan_out(
    event_ids, *, skip_locked: bool, others: int = 0, token=None, lease_failing: bool = True
) -> list[Delivery]:
    with transaction.atomic():
        if others > 0:
            # One query: the oldest waiting events, which under light load are exactly ours.
            limit = others + len(event_ids)
            events = _waiting_events(event_ids, skip_locked=skip_locked, oldest=limit)
            taken = {str(e.pk) for e in events}
            missing = [i for i in event_ids if str(i) not in taken]
            # Fewer than the limit means every waiting event is here: the missing ones were
            # fanned out already (or are being fanned out by another worker).
            if missing and len(events) == limit:
                events += _waiting_events(missing, skip_locked=skip_locked)
        else:
            events = _waiting_events(event_ids, skip_locked=skip_locked) if event_ids else []
        if not events:
            return []
        active = {e.type for e in events if e.type_active}
        # The plan gate, once per scope of the batch: a refused customer's event is recorded
        # (and marked fanned out) but owed to none of its webhooks.
        scopes = plans.allowed_scopes(
            {e.scope for e in events if e.type in active}, in_savepoints=True
        )
        wanted: dict[str, list] = {}  # scope -> [(subscription, its types here or None: all)]
        for sub, types in _subscriptions_for(scopes, sorted(active)):
            wanted.setdefault(sub.scope, []).append((sub, types))
        now = timezone.now()
        leased_until = now + timedelta(seconds=conf.LEASE_SECONDS) if token else None
        deliveries = []
        for event in events:
            if event.type not in active:
                continue
            subs = [
                sub
                for sub, types in wanted.get(event.scope, ())
                if (types is not None and event.type in types)
                # "All events" means the platform's events: notices about webhooks themselves
                # go only to webhooks that chose them (a failing webhook would notify itself).
                or (types is None and event.type not in OPERATIONAL_TYPES)
            ]
            deliveries.extend(
                Delivery(
                    event=event,
                    subscription=sub,
                    next_attempt_at=now,
                    lease_token=token,
                    leased_until=leased_until,
                )
                for sub in sorted(subs, key=lambda sub: str(sub.pk))
            )
        if token:
            if not lease_failing:
                for d in deliveries:
                    if d.subscription.consecutive_failures:
                        d.lease_token = d.leased_until = None
            leased = [d for d in deliveries if d.lease_token is not None]
            # Past one batch, each further batch is leased to a token of its own, to be
            # handed to another worker (``dispatch.process_events``): a wide fan-out, or a
            # batch of events with many subscriptions, is sent in parallel.
            size = max(1, conf.BATCH_SIZE)
            for start in range(size, len(leased), size):
                other = uuid.uuid4()
                for d in leased[start : start + size]:
                    d.lease_token = other
        # No conflict can happen (the events are locked and were not fanned out); should
        # one, the existing row is kept and its copy here is never recorded.
        mark_sql, mark_params = _mark_fanned_out_sql([e.pk for e in events], now)
        if deliveries and connection.vendor == "postgresql":
            # PostgreSQL: the UPDATE rides on the INSERT as a data-modifying WITH, one round
            # trip fewer before the first attempt.
            _insert_deliveries(
                deliveries, now, with_first=(f"WITH marked AS ({mark_sql}) ", mark_params)
            )
        else:
            _insert_deliveries(deliveries, now)
            with connection.cursor() as cursor:
                cursor.execute(mark_sql, mark_params)
    return deliveries


def warm_queries() -> None:
    """Run the fan-out's reads once, matching nothing (a worker's warm-up): a new database
    session parses its first statement on each table slowly while it loads the catalog,
    ~2 ms on PostgreSQL, which would otherwise be added to a first attempt."""
    with transaction.atomic():
        _waiting_events([], skip_locked=True)
        _subscriptions_for({""}, [""])


# The fan-out runs before every first attempt: its event statements are plain SQL, as
# the ORM took more CPU to build them than the database to run them.


def _waiting_events(ids, *, skip_locked: bool, oldest: int = 0) -> list[Event]:
    """Events not yet fanned out, locked, each with ``type_active`` (its type switched on).

    ``oldest``: the oldest ``oldest`` of them that no other worker was handed (the outbox
    broker's claim), ours included; otherwise exactly ``ids``.
    """
    q, meta, types = connection.ops.quote_name, Event._meta, EventType._meta
    pk = meta.pk
    columns = ", ".join(f"e.{q(f.column)}" for f in meta.concrete_fields)
    in_ids = f"e.{q(pk.column)} IN ({', '.join(['%s'] * len(ids))})" if ids else "1 = 0"
    params = [True]
    if oldest:
        claimed = q(meta.get_field("claimed_until").column)
        where = f"(e.{claimed} IS NULL OR e.{claimed} < %s OR {in_ids})"
        now = meta.get_field("claimed_until").get_db_prep_value(timezone.now(), connection)
        params.append(now)
        tail = f" ORDER BY e.{q('occurred_at')} LIMIT {int(oldest)}"
    else:
        where, tail = in_ids, ""
    params += [pk.get_db_prep_value(i, connection) for i in ids]
    if connection.features.has_select_for_update:
        tail += " FOR UPDATE"
        if skip_locked and connection.features.has_select_for_update_skip_locked:
            tail += " SKIP LOCKED"
    sql = (
        f"SELECT {columns}, EXISTS(SELECT 1 FROM {q(types.db_table)} t "
        f"WHERE t.{q('name')} = e.{q('type')} AND t.{q('is_active')} = %s) AS {q('type_active')} "
        f"FROM {q(meta.db_table)} e WHERE e.{q('fanned_out_at')} IS NULL AND {where}{tail}"
    )
    return rows.fetch(Event, sql, params, extra=("type_active",))


def _insert_deliveries(deliveries, now, with_first=("", ())) -> None:
    """``bulk_create(ignore_conflicts=True)`` without the ORM's per-field machinery.

    ``with_first``: SQL and parameters put before the first INSERT (a ``WITH`` clause)."""
    if not deliveries:
        return
    ops, meta = connection.ops, Delivery._meta
    fields = meta.concrete_fields
    for d in deliveries:  # what ``auto_now(_add)`` would set
        d.created_at = d.updated_at = now
    head = (
        f"{ops.insert_statement(on_conflict=OnConflict.IGNORE)} {ops.quote_name(meta.db_table)} "
        f"({', '.join(ops.quote_name(f.column) for f in fields)}) "
    )
    tail = ops.on_conflict_suffix_sql(fields, OnConflict.IGNORE, None, None)
    size = max(1, ops.bulk_batch_size(fields, deliveries))
    prefix, prefix_params = with_first
    db = connections[connection.alias]  # this thread's: the proxy costs a lookup per value
    with db.cursor() as cursor:
        for start in range(0, len(deliveries), size):
            chunk = deliveries[start : start + size]
            values, params = rows.insert_rows(Delivery, fields, chunk, db)
            cursor.execute(f"{prefix}{head}{values} {tail}", [*prefix_params, *params])
            prefix, prefix_params = "", ()
    for d in deliveries:  # saved: as bulk_create leaves them
        d._state.adding, d._state.db = False, connection.alias


def _mark_fanned_out_sql(ids, when) -> tuple[str, list]:
    q, meta = connection.ops.quote_name, Event._meta
    pk = meta.pk
    stamp = meta.get_field("fanned_out_at").get_db_prep_value(when, connection)
    sql = (
        f"UPDATE {q(meta.db_table)} SET {q('fanned_out_at')} = %s "
        f"WHERE {q(pk.column)} IN ({', '.join(['%s'] * len(ids))})"
    )
    return sql, [stamp, *(pk.get_db_prep_value(i, connection) for i in ids)]


def _subscriptions_for(scopes, types: list[str]):
    """The active subscriptions of these scopes that want any of these types, each with
    the set of those types it chose (None for "all events"): one query, whole rows (the
    fan-out sends with them), so no second read and one decryption per subscription.

    Plain SQL read as model rows (``rows.fetch``, fields decrypted): it runs before every
    first attempt, and building it with the ORM cost more CPU than the query (about 1 ms).
    """
    if not scopes or not types:
        return []
    q = connection.ops.quote_name
    sub_meta, event_type = Subscription._meta, EventType._meta
    chosen = sub_meta.get_field("event_types").remote_field.through._meta
    table, sub_id, type_name = q(chosen.db_table), q(sub_meta.pk.column), q("name")
    by_sub = q(chosen.get_field("subscription").column)
    by_type = q(chosen.get_field("eventtype").column)
    types_join = f"JOIN {q(event_type.db_table)} t ON t.{q(event_type.pk.column)} = c.{by_type}"
    columns = ", ".join(f"s.{q(f.column)}" for f in sub_meta.concrete_fields)
    # Correlated to the row: each of the tenant's webhooks is looked up in its own choices
    # (an index probe). ``s.id IN (SELECT …)`` read the choices of every webhook of every
    # tenant that wants the type — 3,500 of them at 100,000 webhooks, 11 ms for an event
    # owed to one — so the fan-out grew with the platform, not with the tenant.
    wants_any = (
        f"EXISTS(SELECT 1 FROM {table} c {types_join} WHERE c.{by_sub} = s.{sub_id} "
        f"AND t.{type_name} IN ({', '.join(['%s'] * len(types))}))"
    )
    wants = ", ".join(
        f"EXISTS(SELECT 1 FROM {table} c {types_join} "
        f"WHERE c.{by_sub} = s.{sub_id} AND t.{type_name} = %s) AS {q(f'wants_{i}')}"
        for i in range(len(types))
    )
    sql = (
        f"SELECT {columns}, {wants} FROM {q(sub_meta.db_table)} s "
        f"WHERE s.{q('is_active')} = %s AND s.{q('scope')} IN ({', '.join(['%s'] * len(scopes))}) "
        f"AND (s.{q('all_events')} = %s OR {wants_any})"
    )
    params = [*types, True, *sorted(scopes), True, *types]
    wanted = tuple(f"wants_{i}" for i in range(len(types)))
    return [
        (
            sub,
            None
            if sub.all_events
            else {name for i, name in enumerate(types) if getattr(sub, f"wants_{i}")},
        )
        for sub in rows.fetch(Subscription, sql, params, extra=wanted)
    ]


def _due(now: datetime) -> Q:
    return Q(status=Delivery.Status.PENDING, next_attempt_at__lte=now) & _unleased(now)


def _unleased(now: datetime) -> Q:
    return Q(leased_until__isnull=True) | Q(leased_until__lt=now)


def claim(
    ids, *, now: datetime | None = None, due_only: bool = True, token: uuid.UUID | None = None
) -> tuple[uuid.UUID, list]:
    """Lease these deliveries to the caller; returns (token, the ids actually claimed).

    Pass ``token`` to add to a lease already held (the ids returned are only the new ones).
    The compare-and-set UPDATE is what makes a claim exclusive, on SQLite as on
    PostgreSQL: of two workers claiming the same row, one updates it, the other
    finds it already leased.
    """
    now = now or timezone.now()
    token = token or uuid.uuid4()
    condition = _due(now) if due_only else _unleased(now)
    Delivery.objects.filter(condition, pk__in=list(ids)).update(
        lease_token=token, leased_until=now + timedelta(seconds=conf.LEASE_SECONDS)
    )
    claimed = list(
        Delivery.objects.filter(pk__in=list(ids), lease_token=token).values_list("pk", flat=True)
    )
    return token, claimed


def claim_due(
    limit: int, *, now: datetime | None = None, token: uuid.UUID | None = None
) -> tuple[uuid.UUID, list]:
    """Lease up to ``limit`` due deliveries of active subscriptions, soonest first.

    On PostgreSQL and MariaDB/MySQL the candidates are locked with SKIP LOCKED, so
    concurrent sweepers pick disjoint sets instead of queueing behind each other.
    MariaDB has no ``FOR UPDATE OF``: there the joined subscription rows are locked too,
    for the instant of this transaction, which only makes another claimer skip them once.
    """
    now = now or timezone.now()
    if not any_due(now):
        return token or uuid.uuid4(), []
    # A subquery, not a join: the lock must take delivery rows only (MariaDB has no
    # FOR UPDATE OF, and locks no rows of a subquery).
    active = Subscription.objects.filter(is_active=True).values("pk")
    lock = {"skip_locked": True}
    if connection.features.has_select_for_update_of:
        lock["of"] = ("self",)
    with transaction.atomic():
        candidates = list(
            Delivery.objects.filter(_due(now), subscription_id__in=active)
            .order_by("next_attempt_at")
            .select_for_update(**lock)
            .values_list("pk", flat=True)[:limit]
        )
        if not candidates:
            return token or uuid.uuid4(), []
        return claim(candidates, now=now, token=token)


def any_due(now: datetime) -> bool:
    """Whether any delivery of an active subscription is due and not leased: one read, in no
    transaction and locking nothing, so that ``claim_due`` with nothing to claim (a task's
    help step, most of the time) opens no transaction (on SQLite, takes no write lock).
    Plain SQL: it runs after every fan-out, and the ORM cost more to build it than to run it."""
    q, meta, subs = connection.ops.quote_name, Delivery._meta, Subscription._meta
    stamp = meta.get_field("next_attempt_at").get_db_prep_value(now, connection)
    sql = (
        f"SELECT 1 FROM {q(meta.db_table)} d WHERE d.{q('status')} = %s "
        f"AND d.{q('next_attempt_at')} <= %s "
        f"AND (d.{q('leased_until')} IS NULL OR d.{q('leased_until')} < %s) "
        f"AND d.{q(meta.get_field('subscription').column)} IN "
        f"(SELECT s.{q(subs.pk.column)} FROM {q(subs.db_table)} s WHERE s.{q('is_active')} = %s) "
        "LIMIT 1"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [Delivery.Status.PENDING.value, stamp, stamp, True])
        return cursor.fetchone() is not None


def claim_requested(limit: int, *, now: datetime | None = None, ids=None) -> tuple[uuid.UUID, list]:
    """Lease up to ``limit`` deliveries with a manual resend requested (of ``ids`` if given),
    not being sent right now, oldest request first."""
    now = now or timezone.now()
    with transaction.atomic():
        candidates = Delivery.objects.filter(_unleased(now), resend_requested_at__isnull=False)
        if ids is not None:
            candidates = candidates.filter(pk__in=list(ids))
        picked = list(
            candidates.order_by("resend_requested_at")
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)[:limit]
        )
        if not picked:
            return uuid.uuid4(), []
        return claim(picked, now=now, due_only=False)


def enqueue_requested(ids=None, max_batches: int | None = None, *, now=None) -> int:
    """Enqueue requested manual attempts (of ``ids``, or any) in batches; returns how many.

    Stops after ``max_batches``, or when the broker fails (that batch's claims are given
    back): the sweeper finds whatever is left by its request, so nothing is dropped.
    """
    size = max(1, conf.BATCH_SIZE)
    if ids is None:
        chunks = iter(lambda: None, 0)  # "any requested", until none is left
    else:
        ids = list(ids)
        chunks = iter([ids[i : i + size] for i in range(0, len(ids), size)])
    sent = 0
    for batches, chunk in enumerate(chunks):
        if max_batches is not None and batches >= max_batches:
            break
        token, claimed = claim_requested(size, ids=chunk, now=now)
        if not claimed:
            if chunk is None:
                break
            continue  # being sent right now: the sweeper resends them afterwards
        if not enqueue("webhooks.tasks.deliver", [str(i) for i in claimed], str(token), "manual"):
            Delivery.objects.filter(pk__in=claimed, lease_token=token).update(
                lease_token=None, leased_until=None
            )
            break
        sent += len(claimed)
    return sent


def unfanned_events(*, now: datetime | None = None, limit: int = 500) -> list:
    """Events whose fan-out enqueue looks lost: older than the grace period, never fanned out.

    Events the outbox broker has handed to a worker are that worker's until their claim
    expires (then the broker hands them out again): the sweeper leaves them alone.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=conf.FAN_OUT_GRACE)
    unclaimed = Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    return list(
        Event.objects.filter(unclaimed, fanned_out_at__isnull=True, occurred_at__lt=cutoff)
        .order_by("occurred_at")
        .values_list("pk", flat=True)[:limit]
    )
