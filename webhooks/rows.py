"""Model instances from plain SQL, for the reads that run once per task or per recording
(the fan-out's events and subscriptions, the recording's lock on its deliveries).

``Model.objects.raw()`` looks up the columns, their fields and their converters again for
every query, which took about as much CPU as the query itself; here that is worked out
once per model and connection. The SQL selects the model's concrete fields first, in
``_meta.concrete_fields`` order; each further column is set on every instance as an
attribute, unconverted, as ``raw()`` sets it.
"""

from __future__ import annotations

from weakref import WeakKeyDictionary

from django.db import connection, connections

#: {a thread's connection: {model: (field names, converters)}}
_plans: WeakKeyDictionary = WeakKeyDictionary()


def fetch(model, sql: str, params, extra: tuple[str, ...] = (), only: tuple[str, ...] = ()) -> list:
    """The instances of ``model`` that ``sql`` selects; ``extra``: the names of the
    columns after the model's fields; ``only``: the names of the fields selected, in
    ``concrete_fields`` order, when not all of them (the others are deferred)."""
    names, converters = _plan(model, only)
    db = connection.alias
    with connection.cursor() as cursor:
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
