"""``path("settings/integrations/webhooks/", include("webhooks.portal.urls"))`` in the host."""

from __future__ import annotations

from django.urls import path

from . import magic, views_webhooks

app_name = "webhooks_portal"

urlpatterns = [
    path("", views_webhooks.WebhookList.as_view(), name="webhooks"),
    path("link/<str:token>/", magic.open_link, name="magic"),
]
