"""Model instances to and from plain SQL, for the statements that run once per task or
per recording (the fan-out's reads and its deliveries' INSERT, the recording's lock on
its deliveries and its attempts' INSERT).

``Model.objects.raw()`` looks up the columns, their fields and their converters again for
every query, which took about as much CPU as the query itself; here that is worked out
once per model and connection. The SQL selects the model's concrete fields first, in
``_meta.concrete_fields`` order; each further column is set on every instance as an
attribute, unconverted, as ``raw()`` sets it.
"""

from __future__ import annotations

import datetime
import decimal
import json
import uuid
from weakref import WeakKeyDictionary

from django.core.signals import setting_changed
from django.db import connection, connections

#: {a thread's connection: {model: (field names, converters)}}
_plans: WeakKeyDictionary = WeakKeyDictionary()


def _forget_plans(setting, **kwargs) -> None:
    # A backend chooses its converters of times by these settings (MySQL's makes them aware
    # only with time zones on): worked out again when they change (tests change them).
    if setting in ("USE_TZ", "TIME_ZONE", "DATABASES"):
        _plans.clear()


setting_changed.connect(_forget_plans, dispatch_uid="webhooks.rows.forget_plans")


def fetch(model, sql: str, params, extra: tuple[str, ...] = (), only: tuple[str, ...] = ()) -> list:
    """The instances of ``model`` that ``sql`` selects; ``extra``: the names of the
    columns after the model's fields; ``only``: the names of the fields selected, in
    ``concrete_fields`` order, when not all of them (the others are deferred)."""
    names, converters = _plan(model, only)
    db = connection.alias
    with connection.cursor() as cursor:
        timestamps = _timestamp_loader(connections[db])
        if timestamps is not None:
            cursor.cursor.adapters.register_loader("timestamptz", timestamps)
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    instances = []
    for row in rows:
        values = list(row[: len(names)])
        for index, functions, column in converters:
            value = values[index]
            for convert in functions:
                value = convert(value, column, connection)
            values[index] = value
        instance = model.from_db(db, names, values)
        for name, value in zip(extra, row[len(names) :], strict=True):
            setattr(instance, name, value)
        instances.append(instance)
    return instances


def _timestamp_loader(wrapper):
    """psycopg's own loader of ``timestamptz`` (C, with psycopg's binary package) where it
    loads what Django's does: Django registers a subclass of psycopg's Python loader (its
    parse is a fifth of the recording's lock on its deliveries, six times per row) that
    sets the connection's time zone on each value; psycopg's sets the session's, which
    Django makes the same, UTC. None elsewhere (psycopg 2, another database or time zone,
    no C loader): Django's loads them."""
    if wrapper.vendor != "postgresql" or wrapper.Database.__name__ != "psycopg":
        return None
    if wrapper.timezone is not datetime.UTC:  # time zones off, or the database's own
        return None
    if "loader" not in _compiled_timestamps:
        from psycopg import postgres
        from psycopg.pq import Format

        loader = postgres.adapters.get_loader(postgres.types["timestamptz"].oid, Format.TEXT)
        compiled = not loader.__module__.startswith("psycopg.")  # psycopg_binary, psycopg_c
        _compiled_timestamps["loader"] = loader if compiled else None
    return _compiled_timestamps["loader"]


_compiled_timestamps: dict = {}


def _plan(model, only: tuple[str, ...] = ()):
    """The attribute names of ``model``'s concrete fields (or of those named in ``only``)
    and, for each field whose values need it, its converters (the backend's, then the
    field's, as the ORM applies them)."""
    wrapper = connections[connection.alias]  # this thread's, not the proxy
    plans = _plans.get(wrapper)
    if plans is None:
        plans = _plans[wrapper] = {}
    key = (model, only)
    if key not in plans:
        table = model._meta.db_table
        fields = [f for f in model._meta.concrete_fields if not only or f.name in only]
        converters = []
        for index, field in enumerate(fields):
            column = field.get_col(table)
            functions = connection.ops.get_db_converters(column) + column.get_db_converters(
                connection
            )
            if functions:
                converters.append((index, functions, column))
        plans[key] = ([f.attname for f in fields], converters)
    return plans[key]


def insert_rows(model, fields, objs, db) -> tuple[str, list]:
    """What follows ``INSERT INTO <table> (<fields' columns>)`` to insert ``objs``, and its
    parameters: ``VALUES (%s, …), …``, one parameter per value; with psycopg 3, one JSON
    document of all the rows (``json_populate_recordset``), whatever their number.

    psycopg binds parameters on the client: it parses a statement's placeholders again
    whenever there are more than 50 (a batch's INSERT has hundreds) and quotes each value
    on its own, about half of such an INSERT's CPU. The JSON document is one parameter of
    a statement whose text is the same for every batch: parsed once, quoted once. The
    database converts each value as it converts a literal (text to the column's type)."""
    if _one_json_document(fields, db):
        q = db.ops.quote_name
        table, columns = q(model._meta.db_table), ", ".join(q(f.column) for f in fields)
        plain = [(f, f.column, _plain_values(f)) for f in fields]
        prepared = [
            {column: _json_ready(f, getattr(o, f.attname), kinds, db) for f, column, kinds in plain}
            for o in objs
        ]
        document = json.dumps(prepared, default=_json_value, allow_nan=False, separators=(",", ":"))
        return f"SELECT {columns} FROM json_populate_recordset(NULL::{table}, %s)", [document]
    row = f"({', '.join(['%s'] * len(fields))})"
    params = [f.get_db_prep_save(getattr(o, f.attname), db) for o in objs for f in fields]
    return f"VALUES {', '.join([row] * len(objs))}", params


def _one_json_document(fields, db) -> bool:
    if db.vendor != "postgresql" or db.Database.__name__ != "psycopg":  # psycopg2: in C
        return False
    # A JSON field with its own encoder keeps the VALUES form: its values are encoded by it.
    return not any(getattr(f, "encoder", None) for f in fields)


#: Django's field types whose str and int values PostgreSQL stores as they are.
_AS_THEY_ARE = {
    "AutoField", "BigAutoField", "SmallAutoField", "IntegerField", "BigIntegerField",
    "SmallIntegerField", "PositiveIntegerField", "PositiveBigIntegerField",
    "PositiveSmallIntegerField", "CharField", "TextField", "SlugField", "EmailField",
    "URLField",
}  # fmt: skip


def _plain_values(field) -> tuple:
    """The types of value that this field stores as they are, which the JSON document can
    take without the field's preparation (a Python call or more per value): none for a
    field class of another package (it may encrypt, say) or a JSON field with an encoder."""
    target = field.target_field if field.is_relation else field
    if not type(target).__module__.startswith("django.db.models"):
        return ()
    kind = target.get_internal_type()
    if kind == "BooleanField":
        return (bool,)
    if kind == "UUIDField":
        return (str, uuid.UUID)  # a UUID as its text, below
    if kind == "DateTimeField":
        return (datetime.datetime,)  # an aware one as its text, below
    if kind == "JSONField" and target.encoder is None:
        # A jsonb column takes the document's value itself (a string stays a JSON string).
        return (dict, list, str, int, float, bool)
    return (str, int) if kind in _AS_THEY_ARE else ()


def _json_ready(field, value, kinds: tuple, db):
    """``value`` as the JSON document takes it: as it is if its type is one of ``kinds``,
    otherwise prepared by its field, as an INSERT's parameter would be."""
    kind = type(value)
    if kind not in kinds and isinstance(value, str) and str in kinds:
        kind = str  # a choice of ``TextChoices``: its field would store it as it is too
    if kind in kinds:
        if kind is uuid.UUID:
            return str(value)
        if kind is datetime.datetime:
            # Django makes a naive one aware in the current time zone: its field does that.
            aware = value.utcoffset() is not None
            return value.isoformat() if aware else field.get_db_prep_save(value, db)
        return value
    if value is None and kinds:  # NULL, as Django's own fields store it
        return None
    return field.get_db_prep_save(value, db)


def _json_value(value):
    """A prepared value that ``json.dumps`` does not know, as the text its column reads."""
    from psycopg.types.json import Json, Jsonb

    if isinstance(value, Json | Jsonb):  # a JSON field's value: the document itself
        return value.obj
    if isinstance(value, datetime.date | datetime.time):  # datetime too; full precision
        return value.isoformat()
    if isinstance(value, uuid.UUID | decimal.Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()
    raise TypeError(f"{type(value).__name__} cannot be inserted as JSON")
