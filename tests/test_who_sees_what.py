"""Deny by default: who sees and changes webhooks, in the admin and the API.

Without tenancy configured (the app's defaults), only superusers and users holding this
app's model permissions see anything; with a host's resolver (the example platform),
tenant members see their own tenant only.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from rest_framework.test import APIClient

from example_project.organisations.models import Membership, Organisation
from tests.factories import SubscriptionFactory
from webhooks.models import Event

pytestmark = pytest.mark.django_db

API = "/api/webhooks/"
ADMIN = "/admin/webhooks/"


@pytest.fixture
def no_tenancy(settings):
    """The app's defaults: no resolver, no scope choices (its API permissions are the default)."""
    for name in ("WEBHOOKS_SCOPE_RESOLVER", "WEBHOOKS_SCOPE_CHOICES"):
        delattr(settings, name)


@pytest.fixture
def webhook(db):
    sub = SubscriptionFactory(url="https://example.com/hook", all_events=True)
    Event.objects.create(type="article.shared", data={"email": "someone@example.com"})
    return sub


def user_with(username, perms=(), **fields):
    user = User.objects.create_user(username, password="pw", **fields)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="webhooks", codename__in=perms)
    )
    return User.objects.get(pk=user.pk)  # no cached permissions


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def admin(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


VIEW_ONLY = ["view_subscription", "view_delivery", "view_event", "view_eventtype"]


def test_a_plain_user_sees_and_changes_nothing(no_tenancy, webhook):
    pat = user_with("pat")
    client = api(pat)
    for path in ("subscriptions/", "events/", "deliveries/", "event-types/"):
        assert client.get(API + path).status_code == 403, path
    assert client.get(API + f"subscriptions/{webhook.pk}/").status_code == 403
    created = client.post(
        API + "subscriptions/", {"url": "https://evil.example/", "all_events": True}, format="json"
    )
    assert created.status_code == 403
    changed = client.patch(API + f"subscriptions/{webhook.pk}/", {"url": "https://evil.example/"})
    assert changed.status_code == 403
    assert client.post(API + f"subscriptions/{webhook.pk}/rotate-secret/").status_code == 403
    webhook.refresh_from_db()
    assert webhook.url == "https://example.com/hook"
    # The admin: not staff, so the login page.
    assert admin(pat).get(ADMIN + "subscription/").status_code == 302


def test_staff_without_the_apps_permissions_see_nothing(no_tenancy, webhook):
    staff = user_with("sam", is_staff=True)
    assert admin(staff).get(ADMIN + "subscription/").status_code == 403
    assert admin(staff).get(ADMIN + "delivery/").status_code == 403
    assert api(staff).get(API + "events/").status_code == 403


def test_a_view_only_staff_user_reads_but_cannot_change(no_tenancy, webhook):
    vic = user_with("vic", VIEW_ONLY, is_staff=True)
    client = api(vic)
    listed = client.get(API + "subscriptions/").json()["results"]
    assert [s["id"] for s in listed] == [str(webhook.pk)]
    assert client.get(API + "events/").json()["results"][0]["type"] == "article.shared"
    assert client.get(API + "event-types/").status_code == 200
    for response in (
        client.post(API + "subscriptions/", {"url": "https://x.example/", "all_events": True}),
        client.patch(API + f"subscriptions/{webhook.pk}/", {"description": "mine"}),
        client.post(API + f"subscriptions/{webhook.pk}/rotate-secret/"),
        client.post(API + f"subscriptions/{webhook.pk}/ping/"),
        client.delete(API + f"subscriptions/{webhook.pk}/"),
    ):
        assert response.status_code == 403
    browser = admin(vic)
    assert browser.get(ADMIN + "subscription/").status_code == 200
    assert browser.get(ADMIN + f"subscription/{webhook.pk}/change/").status_code == 200
    assert browser.post(ADMIN + f"subscription/{webhook.pk}/change/", {}).status_code == 403
    assert browser.get(ADMIN + "subscription/add/").status_code == 403
    assert browser.post(ADMIN + f"subscription/{webhook.pk}/rotate-secret/").status_code == 403


def test_webhooks_permission_without_view_event_sees_no_event(no_tenancy, webhook):
    client = api(user_with("wes", ["view_subscription"]))
    assert client.get(API + "subscriptions/").status_code == 200
    assert client.get(API + "events/").status_code == 403
    assert client.get(API + "deliveries/").status_code == 403


def test_a_superuser_sees_and_changes_everything(no_tenancy, webhook):
    root = User.objects.create_superuser("root", password="pw")
    client = api(root)
    assert len(client.get(API + "subscriptions/").json()["results"]) == 1
    assert len(client.get(API + "events/").json()["results"]) == 1
    response = client.patch(
        API + f"subscriptions/{webhook.pk}/", {"description": "root's"}, format="json"
    )
    assert response.status_code == 200
    assert admin(root).get(ADMIN + "subscription/").status_code == 200


def test_only_authenticated_and_the_default_resolver_still_shows_nothing(settings, webhook):
    """A host that opened the API to every logged-in user, but kept the default resolver."""
    del settings.WEBHOOKS_SCOPE_RESOLVER
    del settings.WEBHOOKS_SCOPE_CHOICES
    settings.WEBHOOKS_API_PERMISSION_CLASSES = ["rest_framework.permissions.IsAuthenticated"]
    client = api(user_with("pat"))
    assert client.get(API + "subscriptions/").json()["results"] == []
    assert client.get(API + "events/").json()["results"] == []
    assert client.get(API + f"subscriptions/{webhook.pk}/").status_code == 404
    response = client.post(
        API + "subscriptions/", {"url": "https://x.example/", "all_events": True}, format="json"
    )
    assert response.status_code == 403


def test_a_tenant_member_sees_only_their_tenant(webhook):
    """The example platform: its resolver ties each user (with the permissions) to one
    organisation."""
    acme = Organisation.objects.create(name="Acme", slug="acme")
    globex = Organisation.objects.create(name="Globex", slug="globex")
    mine = SubscriptionFactory(url="https://acme.example/", scope=acme.scope, all_events=True)
    SubscriptionFactory(url="https://globex.example/", scope=globex.scope, all_events=True)
    Event.objects.all().delete()
    Event.objects.create(type="article.shared", data={}, scope=globex.scope)
    member = user_with("mia", VIEW_ONLY)
    Membership.objects.create(user=member, organisation=acme)
    client = api(member)
    assert [s["id"] for s in client.get(API + "subscriptions/").json()["results"]] == [str(mine.pk)]
    scopes = {e["scope"] for e in client.get(API + "events/").json()["results"]}
    assert scopes == {acme.scope}  # its own (mia joined), none of Globex's
    outsider = api(user_with("otto", ["view_subscription", "view_event", "add_subscription"]))
    assert outsider.get(API + "subscriptions/").json()["results"] == []  # in no organisation
    assert outsider.get(API + "events/").json()["results"] == []
    response = outsider.post(
        API + "subscriptions/", {"url": "https://x.example/", "all_events": True}, format="json"
    )
    assert response.status_code == 403
