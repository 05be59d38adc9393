"""The host's API: declare event types and bind them to model changes.

A host app declares each event type once, then says which model change raises
it. Declarations usually live in a ``webhook_events.py`` module of the host app,
imported by ``webhooks`` at start-up (see ``apps.py``)::

    import webhooks

    webhooks.event_type("item.created", category="Item Authoring",
                        description="An item was created.", example={"id": 1})
    webhooks.on_create(Item, "item.created", payload=item_payload, scope=item_org)

Binding connects a signal receiver with an explicit sender; nothing here touches
the database.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.utils.module_loading import import_string

EVENT_NAME_RE = re.compile(r"^[a-z][a-zA-Z0-9]*(\.[a-z][a-zA-Z0-9]*)+$")

#: Marks "no value" in a field snapshot (a new object, or a deferred field).
MISSING = object()


@dataclass(frozen=True)
class EventTypeSpec:
    name: str
    category: str = ""
    description: str = ""
    example: dict = field(default_factory=dict)
    schema: dict | None = None


@dataclass(frozen=True)
class Binding:
    """One rule: when ``kind`` happens to ``model`` (and ``condition`` holds), raise ``event``."""

    model: type[models.Model]
    kind: str  # "created" | "updated" | "deleted" | "changed" | "m2m_added" | "m2m_removed"
    event: str
    payload: Any = None  # callable, DRF serializer class, or dotted path to either
    scope: Callable[..., Any] | None = None
    condition: Callable[..., bool] | None = None
    field: str | None = None  # "changed": the attname watched
    to: Any = MISSING  # "changed": the value that raises the event; MISSING = any change
    on_create: bool = True  # "changed": a new row holding ``to`` counts as a change
    fields: tuple[str, ...] = ()  # "updated": attnames of which one must change (empty: any save)
    m2m_field: str | None = None  # m2m kinds: the forward field name on ``model``
    #: Several saves of one object in one transaction raise one event (``coalesce.py``).
    coalesce: bool = True

    def make_payload(self, instance, related=None) -> dict:
        build = import_string(self.payload) if isinstance(self.payload, str) else self.payload
        args = (instance,) if related is None else (instance, related)
        if build is None:
            data = {"id": instance.pk, "model": instance._meta.label_lower}
            if related is not None:
                data["related_id"] = related.pk
            return data
        if _is_serializer(build):
            return dict(build(instance).data)
        return build(*args)

    def make_scope(self, instance, related=None) -> str:
        if self.scope is None:
            return ""
        value = self.scope(instance) if related is None else self.scope(instance, related)
        return "" if value is None else str(value)

    def applies(self, instance, related=None) -> bool:
        if self.condition is None:
            return True
        return bool(
            self.condition(instance) if related is None else self.condition(instance, related)
        )


def _is_serializer(obj) -> bool:
    try:
        from rest_framework.serializers import BaseSerializer
    except ImportError:  # pragma: no cover - DRF is a dependency
        return False
    return isinstance(obj, type) and issubclass(obj, BaseSerializer)


class Registry:
    def __init__(self) -> None:
        self.event_types: dict[str, EventTypeSpec] = {}
        self.bindings: list[Binding] = []

    # -- event types -------------------------------------------------------------------------
    def event_type(
        self,
        name: str,
        *,
        category: str = "",
        description: str = "",
        example: dict | None = None,
        schema: dict | None = None,
    ) -> EventTypeSpec:
        if not EVENT_NAME_RE.match(name):
            raise ImproperlyConfigured(
                f"Event type name {name!r} must look like 'resource.action' "
                "(letters and digits, lower camel case, parts joined by dots)."
            )
        spec = EventTypeSpec(name, category, description, dict(example or {}), schema)
        existing = self.event_types.get(name)
        if existing is not None and existing != spec:
            raise ImproperlyConfigured(f"Event type {name!r} is declared twice, differently.")
        self.event_types[name] = spec
        return spec

    def names(self) -> list[str]:
        return sorted(self.event_types)

    # -- bindings ----------------------------------------------------------------------------
    def _add(self, binding: Binding) -> Binding:
        if binding.event not in self.event_types:
            raise ImproperlyConfigured(
                f"Cannot bind {binding.model.__name__} to {binding.event!r}: declare it first "
                "with webhooks.event_type()."
            )
        self.bindings.append(binding)
        from . import receivers

        receivers.connect(binding)
        return binding

    def on_create(self, model, event, **options) -> Binding:
        return self._add(Binding(model, "created", event, **options))

    def on_update(self, model, event, *, fields: Iterable[str] = (), **options) -> Binding:
        """A save of an existing row (a soft delete is an update, not a delete).

        With ``fields``, only a save that changes one of them counts (so a login that
        touches ``last_login`` is not a ``user.updated``).
        """
        attnames = tuple(model._meta.get_field(name).attname for name in fields)
        return self._add(Binding(model, "updated", event, fields=attnames, **options))

    def on_delete(self, model, event, **options) -> Binding:
        """A real delete of the row."""
        return self._add(Binding(model, "deleted", event, **options))

    def on_crud(
        self, model, *, created=None, updated=None, deleted=None, **options
    ) -> list[Binding]:
        pairs = (("created", created), ("updated", updated), ("deleted", deleted))
        return [self._add(Binding(model, kind, event, **options)) for kind, event in pairs if event]

    def on_change(
        self, model, field_name: str, event: str, *, to: Any = MISSING, on_create=True, **options
    ):
        """Raise ``event`` each time ``field_name`` changes (to ``to``, if given).

        A new row whose field already holds ``to`` counts as a change, unless
        ``on_create=False`` (an item created in a subject has not "moved").
        """
        attname = model._meta.get_field(field_name).attname
        return self._add(
            Binding(model, "changed", event, field=attname, to=to, on_create=on_create, **options)
        )

    def on_m2m(
        self,
        model,
        field_name: str,
        *,
        added: str | None = None,
        removed: str | None = None,
        **options,
    ) -> list[Binding]:
        """Raise one event per related object added to / removed from ``model.field_name``.

        ``payload``, ``scope`` and ``condition`` receive ``(instance, related)`` with
        ``instance`` always a ``model`` row, whichever side the change was made from.
        """
        m2m = model._meta.get_field(field_name)
        if not m2m.many_to_many or m2m.auto_created:
            raise ImproperlyConfigured(
                f"{model.__name__}.{field_name} is not a many-to-many field."
            )
        pairs = (("m2m_added", added), ("m2m_removed", removed))
        return [
            self._add(Binding(model, kind, event, m2m_field=field_name, **options))
            for kind, event in pairs
            if event
        ]

    def for_model(self, model, kinds: Iterable[str]) -> list[Binding]:
        kinds = set(kinds)
        return [b for b in self.bindings if b.model is model and b.kind in kinds]


registry = Registry()


def sync_event_types(using: str = "default") -> tuple[int, int]:
    """Make the EventType table match the registry. Returns (created, updated).

    Admin choices (``is_active``) survive; types no longer declared are deactivated.
    """
    from .models import EventType

    created = updated = 0
    existing = {et.name: et for et in EventType.objects.using(using).all()}
    for spec in registry.event_types.values():
        fields = {
            "category": spec.category,
            "description": spec.description,
            "example_payload": spec.example,
            "schema": spec.schema,
        }
        row = existing.get(spec.name)
        if row is None:
            EventType.objects.using(using).create(name=spec.name, **fields)
            created += 1
        elif any(getattr(row, k) != v for k, v in fields.items()):
            EventType.objects.using(using).filter(pk=row.pk).update(**fields)
            updated += 1
    gone = set(existing) - set(registry.event_types)
    if gone:
        updated += (
            EventType.objects.using(using)
            .filter(name__in=gone, is_active=True)
            .update(is_active=False)
        )
    return created, updated
