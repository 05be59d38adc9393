"""The portal's pages in Wagtail's admin (mounted by ``wagtail_hooks``)."""

from __future__ import annotations

from ...portal.urls import portal_patterns
from ...portal.views import Surface
from .access import wagtail_access

#: The instance namespace: a host may mount the customers' portal too (``webhooks_portal``).
NAMESPACE = "webhooks_wagtail"

WAGTAIL = Surface(
    access=wagtail_access,
    base_template="webhooks/wagtail/base.html",
    header_template="webhooks/wagtail/header.html",
    show_messages=False,  # Wagtail's layout shows them
)

app_name = "webhooks_portal"
urlpatterns = portal_patterns(WAGTAIL, magic_links=False)
