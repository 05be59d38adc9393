"""``path("settings/integrations/webhooks/", include("webhooks.portal.urls"))`` in the host."""

from __future__ import annotations

from django.urls import path

from . import magic, views_catalogue, views_deliveries, views_secrets, views_webhooks

app_name = "webhooks_portal"

urlpatterns = [
    path("", views_webhooks.WebhookList.as_view(), name="webhooks"),
    path("new/", views_webhooks.WebhookAdd.as_view(), name="add"),
    path("<uuid:pk>/", views_webhooks.WebhookDetail.as_view(), name="webhook"),
    path("<uuid:pk>/edit/", views_webhooks.WebhookEdit.as_view(), name="edit"),
    path("<uuid:pk>/disable/", views_webhooks.WebhookDisable.as_view(), name="disable"),
    path("<uuid:pk>/enable/", views_webhooks.WebhookEnable.as_view(), name="enable"),
    # -- a magic link opening a session for one customer (magic) ---------------------------
    path("link/<str:token>/", magic.open_link, name="magic"),
    # -- a webhook's signing secret and test event (views_secrets) --------------------------
    path("<uuid:pk>/secret/", views_secrets.WebhookSecret.as_view(), name="secret"),
    path("<uuid:pk>/test/", views_secrets.SendTestEvent.as_view(), name="test"),
    # -- the event catalogue (views_catalogue) ----------------------------------------------
    path("events/", views_catalogue.EventCatalogue.as_view(), name="catalogue"),
    path("events/<str:name>/", views_catalogue.EventTypeDetail.as_view(), name="event_type"),
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
