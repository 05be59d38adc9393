"""``path("settings/integrations/webhooks/", include("webhooks.portal.urls"))`` in the host."""

from __future__ import annotations

from django.urls import path

from . import views_deliveries, views_webhooks

app_name = "webhooks_portal"

urlpatterns = [
    path("", views_webhooks.WebhookList.as_view(), name="webhooks"),
]

# The deliveries log: a delivery's attempts, resend, recover since a time, live progress.
urlpatterns += [
    path("deliveries/", views_deliveries.DeliveryLog.as_view(), name="deliveries"),
    path(
        "deliveries/resend/", views_deliveries.ResendDeliveries.as_view(), name="deliveries_resend"
    ),
    path("deliveries/<uuid:pk>/", views_deliveries.DeliveryDetail.as_view(), name="delivery"),
    path(
        "deliveries/<uuid:pk>/resend/",
        views_deliveries.ResendDelivery.as_view(),
        name="delivery_resend",
    ),
    path("deliveries/progress/", views_deliveries.Progress.as_view(), name="progress"),
    path("<uuid:pk>/recover/", views_deliveries.RecoverWebhook.as_view(), name="recover"),
]
