"""Outgoing webhooks for Django.

The names a host app calls::

    import webhooks

    webhooks.event_type("invite.sent", category="Users", description="…", example={…})
    webhooks.on_create(User, "user.registered", payload=…, scope=…)
    webhooks.send_event("invite.sent", {"email": "…"}, scope=org.pk)
"""

from __future__ import annotations

__all__ = [
    "event_type",
    "on_change",
    "on_create",
    "on_crud",
    "on_delete",
    "on_m2m",
    "on_update",
    "previous_value",
    "send_event",
]


def __getattr__(name):
    # Lazy: importing ``webhooks`` must not import models before apps are ready.
    from .registry import registry

    if name in {
        "event_type",
        "on_change",
        "on_create",
        "on_crud",
        "on_delete",
        "on_m2m",
        "on_update",
    }:
        return getattr(registry, name)
    if name == "send_event":
        from .outbox import send_event

        return send_event
    if name == "previous_value":
        from .receivers import previous_value

        return previous_value
    raise AttributeError(f"module 'webhooks' has no attribute {name!r}")
