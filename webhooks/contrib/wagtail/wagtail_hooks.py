"""Wagtail's hooks: the Settings menu item, the admin URLs, the group editor's permissions."""

from __future__ import annotations

from django.contrib.auth.models import Permission
from django.urls import include, path, reverse
from wagtail import hooks
from wagtail.admin.menu import MenuItem

from .access import wagtail_access
from .urls import NAMESPACE

#: The models whose permissions Wagtail's group editor offers (not the internal ones).
PERMISSION_MODELS = ["subscription", "delivery", "deliveryattempt", "event", "eventtype"]


class WebhooksMenuItem(MenuItem):
    def is_shown(self, request) -> bool:
        return wagtail_access(request) is not None


@hooks.register("register_admin_urls")
def webhooks_urls():
    # Under Wagtail's admin, so Wagtail's own login and access_admin check come first.
    return [path("webhooks/", include("webhooks.contrib.wagtail.urls", namespace=NAMESPACE))]


@hooks.register("register_settings_menu_item")
def webhooks_menu_item():
    return WebhooksMenuItem(
        "Webhooks", reverse(f"{NAMESPACE}:webhooks"), name="webhooks", icon_name="link"
    )


@hooks.register("register_permissions")
def webhooks_permissions():
    return Permission.objects.filter(
        content_type__app_label="webhooks", content_type__model__in=PERMISSION_MODELS
    )
