"""Who may use the API: the permission classes are a setting, read on every request."""

from __future__ import annotations

from django.utils.module_loading import import_string

from ..conf import conf


def api_permission_classes() -> list[type]:
    """The classes named by ``WEBHOOKS_API_PERMISSION_CLASSES`` (default: IsAuthenticated)."""
    return [import_string(path) for path in conf.API_PERMISSION_CLASSES]


class ConfiguredPermissionsMixin:
    """A DRF view mixin taking its permissions from ``WEBHOOKS_API_PERMISSION_CLASSES``."""

    def get_permissions(self):
        return [permission() for permission in api_permission_classes()]
