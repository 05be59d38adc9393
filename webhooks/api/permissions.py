"""Who may use the API: the permission classes are a setting, read on every request.

The default denies by default, like the admin: each action needs the Django model
permission of what it does (``view``/``add``/``change``/``delete`` of the viewset's
model). A multi-tenant host keeps it and gives the tenant members who manage webhooks
these permissions (a group); its ``WEBHOOKS_SCOPE_RESOLVER`` keeps each to their tenant.
"""

from __future__ import annotations

from django.utils.module_loading import import_string
from rest_framework.permissions import BasePermission

from ..conf import conf

#: The model permission (action part of the codename) each standard action needs.
ACTION_PERMISSIONS = {
    "list": "view",
    "retrieve": "view",
    "metadata": "view",
    "create": "add",
    "update": "change",
    "partial_update": "change",
    "destroy": "delete",
}


def api_permission_classes() -> list[type]:
    """The classes named by ``WEBHOOKS_API_PERMISSION_CLASSES``."""
    return [import_string(path) for path in conf.API_PERMISSION_CLASSES]


class ConfiguredPermissionsMixin:
    """A DRF view mixin taking its permissions from ``WEBHOOKS_API_PERMISSION_CLASSES``."""

    def get_permissions(self):
        return [permission() for permission in api_permission_classes()]


class WebhooksModelPermissions(BasePermission):
    """The caller holds the model permission of what the action does, as in the admin.

    A view says which with ``permission_models`` (models any of whose permission will do)
    and ``action_permissions`` (extra actions, e.g. ``{"ping": "change"}``). An action it
    does not name is refused.
    """

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not user or not user.is_authenticated or not user.is_active:
            return False
        if getattr(view, request.method.lower(), None) is None:
            return True  # no handler for this method: DRF answers 405, not a misleading 403
        actions = {**ACTION_PERMISSIONS, **getattr(view, "action_permissions", {})}
        needed = actions.get(getattr(view, "action", None))
        if needed is None:
            return user.is_superuser
        return any(
            user.has_perm(f"{model._meta.app_label}.{needed}_{model._meta.model_name}")
            for model in view.permission_models
        )
