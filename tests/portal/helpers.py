"""What the portal's tests share: customers of the example platform, signed in."""

from __future__ import annotations

from django.contrib.auth.models import Permission
from django.test import Client

PORTAL = "/settings/integrations/webhooks/"


def signed_in(user, **client_options) -> Client:
    client = Client(**client_options)
    client.force_login(user)
    return client


def read_only(tenant) -> None:
    """Make the tenant's user one who may look at webhooks but change nothing."""
    tenant.user.groups.clear()
    tenant.user.user_permissions.add(
        Permission.objects.get(content_type__app_label="webhooks", codename="view_subscription")
    )


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []
