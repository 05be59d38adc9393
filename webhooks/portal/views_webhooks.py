"""The customer's webhooks: list, add, edit, disable/enable, secret, test event."""

from __future__ import annotations

from ..models import Subscription
from .views import PortalView


class WebhookList(PortalView):
    section = "webhooks"

    def get(self, request):
        webhooks = Subscription.objects.filter(scope=self.access.scope).order_by("-created_at")
        return self.render("webhooks/portal/webhook_list.html", webhooks=webhooks)
