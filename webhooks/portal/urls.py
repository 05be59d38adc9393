"""``path("settings/integrations/webhooks/", include("webhooks.portal.urls"))`` in the host."""

from __future__ import annotations

from django.urls import path

from . import views_webhooks

app_name = "webhooks_portal"

urlpatterns = [
    path("", views_webhooks.WebhookList.as_view(), name="webhooks"),
    path("new/", views_webhooks.WebhookAdd.as_view(), name="add"),
    path("<uuid:pk>/", views_webhooks.WebhookDetail.as_view(), name="webhook"),
    path("<uuid:pk>/edit/", views_webhooks.WebhookEdit.as_view(), name="edit"),
    path("<uuid:pk>/disable/", views_webhooks.WebhookDisable.as_view(), name="disable"),
    path("<uuid:pk>/enable/", views_webhooks.WebhookEnable.as_view(), name="enable"),
]
