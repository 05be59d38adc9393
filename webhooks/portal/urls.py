"""``path("settings/integrations/webhooks/", include("webhooks.portal.urls"))`` in the host."""

from __future__ import annotations

from django.urls import path

from . import magic, views_catalogue, views_deliveries, views_secrets, views_webhooks
from .views import CUSTOMERS, Surface

app_name = "webhooks_portal"


def portal_patterns(surface: Surface = CUSTOMERS, *, magic_links: bool = True) -> list:
    """The portal's pages on ``surface`` (who may see what, in which layout); the customers'
    portal by default. ``webhooks.contrib.wagtail`` mounts them in Wagtail's admin with a
    surface of its own and no magic links (its users are signed in to Wagtail)."""

    def page(view):
        return view.as_view(surface=surface)

    patterns = [
        path("", page(views_webhooks.WebhookList), name="webhooks"),
        path("new/", page(views_webhooks.WebhookAdd), name="add"),
        path("<uuid:pk>/", page(views_webhooks.WebhookDetail), name="webhook"),
        path("<uuid:pk>/edit/", page(views_webhooks.WebhookEdit), name="edit"),
        path("<uuid:pk>/disable/", page(views_webhooks.WebhookDisable), name="disable"),
        path("<uuid:pk>/enable/", page(views_webhooks.WebhookEnable), name="enable"),
        # -- a webhook's signing secret and test event (views_secrets) ----------------------
        path("<uuid:pk>/secret/", page(views_secrets.WebhookSecret), name="secret"),
        path("<uuid:pk>/test/", page(views_secrets.SendTestEvent), name="test"),
        # -- the event catalogue (views_catalogue) ------------------------------------------
        path("events/", page(views_catalogue.EventCatalogue), name="catalogue"),
        path("events/<str:name>/", page(views_catalogue.EventTypeDetail), name="event_type"),
        # -- the deliveries log: a delivery's attempts, resend, recover, live progress ------
        path("deliveries/", page(views_deliveries.DeliveryLog), name="deliveries"),
        path(
            "deliveries/resend/",
            page(views_deliveries.ResendDeliveries),
            name="deliveries_resend",
        ),
        path("deliveries/<uuid:pk>/", page(views_deliveries.DeliveryDetail), name="delivery"),
        path(
            "deliveries/<uuid:pk>/resend/",
            page(views_deliveries.ResendDelivery),
            name="delivery_resend",
        ),
        path("deliveries/progress/", page(views_deliveries.Progress), name="progress"),
        path("<uuid:pk>/recover/", page(views_deliveries.RecoverWebhook), name="recover"),
    ]
    if magic_links:
        # -- a magic link opening a session for one customer (magic) ------------------------
        patterns.append(path("link/<str:token>/", magic.open_link, name="magic"))
    return patterns


urlpatterns = portal_patterns()
