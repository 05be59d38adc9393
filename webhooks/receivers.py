"""Signal handlers that turn model changes into Events.

Each bound model gets its receivers connected with an explicit sender: a save of
an unbound model costs nothing. Field changes are detected from a snapshot taken
in ``post_init`` (no extra query on save).
"""

from __future__ import annotations

import threading
from collections import defaultdict

from django.db import router
from django.db.models.signals import (
    class_prepared,
    m2m_changed,
    post_delete,
    post_init,
    post_save,
)

from . import coalesce, outbox
from .models import Event
from .registry import MISSING, Binding

_SNAPSHOT = "_webhooks_snapshot"
_CLEARED = "_webhooks_cleared"

_by_model: dict[type, list[Binding]] = defaultdict(list)
_by_through: dict[type, list[Binding]] = defaultdict(list)
_tracked_fields: dict[type, set[str]] = defaultdict(set)


def connect(binding: Binding) -> None:
    model = binding.model
    if binding.kind.startswith("m2m_"):
        # An inherited m2m keeps its parent's through table: one sender covers the family.
        through = model._meta.get_field(binding.m2m_field).remote_field.through
        _by_through[through].append(binding)
        uid = model._meta.label
        m2m_changed.connect(_on_m2m_changed, sender=through, dispatch_uid=f"webhooks.m2m.{uid}")
        return
    _by_model[model].append(binding)
    watched = (binding.field,) if binding.kind == "changed" else binding.fields
    _tracked_fields[model].update(watched or ())
    # Django names the concrete class as the sender (a BlogPage save is not a Page save),
    # so a binding listens to its model, its multi-table subclasses and its proxies.
    for sender in _family(model):
        _connect_sender(sender)


def _family(model) -> list[type]:
    from django.apps import apps
    from django.core.exceptions import AppRegistryNotReady

    try:
        models = apps.get_models()
    except AppRegistryNotReady:  # bound while models load: class_prepared adds the rest
        models = []
    return list(dict.fromkeys([model, *(m for m in models if issubclass(m, model))]))


def _connect_sender(sender) -> None:
    uid = sender._meta.label
    kinds = {b.kind for b in _bindings_for(sender)}
    if "deleted" in kinds:
        post_delete.connect(_on_post_delete, sender=sender, dispatch_uid=f"webhooks.delete.{uid}")
    if kinds - {"deleted"}:
        post_save.connect(_on_post_save, sender=sender, dispatch_uid=f"webhooks.save.{uid}")
    if _tracked_for(sender):
        post_init.connect(_on_post_init, sender=sender, dispatch_uid=f"webhooks.init.{uid}")


def _on_class_prepared(sender, **kwargs) -> None:
    """A subclass of a bound model defined after the binding is covered too."""
    if any(issubclass(sender, model) for model in _by_model if model is not sender):
        _connect_sender(sender)


class_prepared.connect(_on_class_prepared, dispatch_uid="webhooks.class_prepared")


def _bindings_for(sender) -> list[Binding]:
    """The bindings of ``sender`` and of every model it inherits from (MRO order)."""
    return [b for model in sender.__mro__ for b in _by_model.get(model, ())]


def _tracked_for(sender) -> set[str]:
    return set().union(*(_tracked_fields.get(model, ()) for model in sender.__mro__))


def previous_value(instance, field_name: str):
    """The value ``field_name`` had when ``instance`` was loaded or last saved.

    Meant for payload functions (e.g. an item's old subject). Only fields watched by an
    ``on_change`` binding or listed in an ``on_update(fields=…)`` are remembered.
    """
    attname = instance._meta.get_field(field_name).attname
    value = getattr(instance, _SNAPSHOT, {}).get(attname, MISSING)
    return None if value is MISSING else value


def _snapshot(instance) -> None:
    # Read __dict__ directly: a deferred field must not cost a query here.
    fields = _tracked_for(type(instance))
    setattr(instance, _SNAPSHOT, {f: instance.__dict__.get(f, MISSING) for f in fields})


def _on_post_init(sender, instance, **kwargs) -> None:
    _snapshot(instance)


def _raise(binding: Binding, instance, related=None) -> None:
    if binding.applies(instance, related):
        outbox.write_event(
            binding.event,
            binding.make_payload(instance, related),
            scope=binding.make_scope(instance, related),
            source=instance,
        )


def _changed(instance, attname: str) -> bool:
    """Whether a saved row's field differs from its snapshot."""
    new = instance.__dict__.get(attname, MISSING)
    old = getattr(instance, _SNAPSHOT, {}).get(attname, MISSING)
    # Deferred on load (or on save): we cannot tell, so we do not guess.
    return new is not MISSING and old is not MISSING and old != new


def _field_changed(binding: Binding, instance, created: bool) -> bool:
    new = instance.__dict__.get(binding.field, MISSING)
    if created:
        reached = binding.on_create and new is not MISSING
    else:
        reached = _changed(instance, binding.field)
    return reached and (binding.to is MISSING or new == binding.to)


def _fires(binding: Binding, instance, created: bool) -> bool:
    """Whether this save is the change ``binding`` is about (its condition aside)."""
    if binding.kind == "created":
        return created
    if binding.kind == "updated":
        return not created and (
            not binding.fields or any(_changed(instance, f) for f in binding.fields)
        )
    return binding.kind == "changed" and _field_changed(binding, instance, created)


def _on_post_save(sender, instance, created, raw=False, **kwargs) -> None:
    if raw:  # loaddata: fixtures are not events
        return
    bindings = _bindings_for(sender)
    pending = _pending_events(bindings)
    if pending is None:  # autocommit, or nothing coalesces: one event per save
        for binding in bindings:
            if _fires(binding, instance, created):
                _raise(binding, instance)
    else:
        _coalesce(bindings, instance, created, pending)
    if _tracked_for(sender):
        _snapshot(instance)


def _pending_events(bindings) -> coalesce.PendingEvents | None:
    """The events this transaction has raised so far; None in autocommit (each save is
    its own transaction) or when no binding coalesces."""
    if not any(b.coalesce and b.kind in COALESCED for b in bindings):
        return None
    using = router.db_for_write(Event)
    if not coalesce.in_transaction(using):
        return None
    return coalesce.current(using, create=False) or _NONE_YET


#: The kinds whose several saves in one transaction make one event (a delete happens once,
#: and each m2m add or remove is an event of its own).
COALESCED = ("created", "updated", "changed")
#: A transaction that has raised no event yet: its PendingEvents is made with the first.
_NONE_YET = coalesce.PendingEvents(None)


def _coalesce(bindings, instance, created, pending) -> None:
    """Inside a transaction: one event per binding and object, with the state of the last
    save. A save of an object created in the same transaction refreshes its `created`
    event instead of raising `updated`."""
    raised = pending.ids.get(instance.pk, {})
    refreshed_created = [
        _rewrite(b, instance, pending)
        for b in bindings
        if b.kind == "created" and not created and id(b) in raised
    ]
    for binding in bindings:
        if binding.kind == "created" and not created:
            continue  # refreshed above
        if not (binding.coalesce and binding.kind in COALESCED):
            if _fires(binding, instance, created):
                _raise(binding, instance)
            continue
        if binding.kind == "updated" and any(refreshed_created):
            fires = False  # part of the creation
        else:
            fires = _fires(binding, instance, created) and binding.applies(instance)
        if fires:
            if not _rewrite(binding, instance, pending):
                _write(binding, instance)
        elif id(binding) in raised:
            _rewrite(binding, instance, pending)  # raised earlier: the last state


def _rewrite(binding: Binding, instance, pending) -> bool:
    """Refresh the event ``binding`` raised for ``instance`` earlier in this transaction;
    False when there is none (any more: a rolled-back savepoint took it)."""
    raised = pending.ids.get(instance.pk, {})
    event_id = raised.get(id(binding))
    if event_id is None:
        return False
    using = router.db_for_write(Event)
    done = outbox.rewrite_event(
        event_id,
        binding.event,
        binding.make_payload(instance),
        scope=binding.make_scope(instance),
        using=using,
    )
    if not done:
        del raised[id(binding)]
    return done


def _write(binding: Binding, instance) -> None:
    event_id = outbox.write_event(
        binding.event,
        binding.make_payload(instance),
        scope=binding.make_scope(instance),
        source=instance,
    )
    pending = coalesce.current(router.db_for_write(Event))
    if pending is not None:
        pending.for_object(instance.pk)[id(binding)] = event_id


def _on_post_delete(sender, instance, origin=None, **kwargs) -> None:
    # Deleting a multi-table child deletes its parent rows too, and Django signals each
    # row, the child first. The child's signal raises the bindings of its ancestors too,
    # so their payloads get the most specific instance (a BlogPage, not its Page row); the
    # parents' signals of the same delete are then skipped.
    rows = _rows_deleted_with_a_child(origin)
    concrete = sender._meta.concrete_model
    if (concrete, instance.pk) in rows:
        return
    for binding in _bindings_for(sender):
        if binding.kind != "deleted":
            continue
        if origin is None and binding.model._meta.concrete_model is not concrete:
            continue  # sent by hand, not by a delete: its parents' signals may follow
        _raise(binding, instance)
    if origin is not None:
        for parent in concrete._meta.all_parents:
            link = concrete._meta.get_ancestor_link(parent)
            if link is not None:
                rows.add((parent._meta.concrete_model, getattr(instance, link.attname)))


_deleting = threading.local()


def _rows_deleted_with_a_child(origin) -> set:
    """The (model, pk) parent rows already raised as a child in the delete of ``origin``.

    Kept for one delete at a time (per thread): a delete with another origin starts afresh,
    so a ``keep_parents`` delete leaves nothing behind to skip later."""
    if origin is None:
        return set()
    if getattr(_deleting, "origin", None) is not origin:
        _deleting.origin, _deleting.rows = origin, set()
    return _deleting.rows


def _on_m2m_changed(sender, instance, action, reverse, model, pk_set, **kwargs) -> None:
    for binding in _by_through.get(sender, ()):
        if action in ("pre_clear", "post_clear") and binding.kind != "m2m_removed":
            continue
        if action == "pre_clear":
            # Remember what a clear() removes, so post_clear can raise one event per object.
            cleared = getattr(instance, _CLEARED, {})
            cleared[binding.m2m_field] = _current_pks(binding, instance, reverse)
            setattr(instance, _CLEARED, cleared)
            continue
        if action == "post_clear":
            pk_set = getattr(instance, _CLEARED, {}).pop(binding.m2m_field, set())
            kind = "m2m_removed"
        elif action in ("post_add", "post_remove"):
            kind = "m2m_added" if action == "post_add" else "m2m_removed"
        else:
            continue
        if binding.kind != kind or not pk_set:
            continue
        for owner, related in _pairs(binding, instance, reverse, model, pk_set):
            _raise(binding, owner, related)


def _current_pks(binding: Binding, instance, reverse: bool) -> set:
    if reverse:
        lookup = {binding.m2m_field: instance}
        return set(binding.model._default_manager.filter(**lookup).values_list("pk", flat=True))
    return set(getattr(instance, binding.m2m_field).values_list("pk", flat=True))


def _pairs(binding: Binding, instance, reverse: bool, model, pk_set):
    """(owner, related) pairs with ``owner`` always a ``binding.model`` row."""
    others = model._default_manager.filter(pk__in=pk_set).order_by("pk")
    if reverse:
        return [(owner, instance) for owner in others]
    return [(instance, related) for related in others]
