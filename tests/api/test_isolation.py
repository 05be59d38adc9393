"""Tenant isolation: another tenant's webhooks, deliveries and events do not exist for you."""

from __future__ import annotations

import pytest

from tests.api.conftest import API
from tests.receiver import Receiver
from tests.testapp.models import Article
from webhooks.models import Delivery, DeliveryAttempt, Event, Subscription

pytestmark = pytest.mark.django_db


def snapshot():
    """Everything the API could change, as plain values."""
    return {
        model.__name__: sorted(map(str, model.objects.values()))
        for model in (Subscription, Delivery, DeliveryAttempt, Event)
    }


@pytest.fixture
def two_tenants(tenant_a, tenant_b, commit):
    """Each tenant: a webhook to its own receiver, one event and a delivery of it."""
    receivers = {"a": Receiver(), "b": Receiver()}
    objects = {}
    for key, tenant in (("a", tenant_a), ("b", tenant_b)):
        sub = tenant.subscription(receivers[key], ["article.created"])
        with commit():
            Article.objects.create(title=f"by {key}", tenant=tenant.scope)
        objects[key] = {
            "tenant": tenant,
            "subscription": sub,
            "delivery": sub.deliveries.get(),
            "event": Event.objects.get(scope=tenant.scope),
            "receiver": receivers[key],
        }
    yield objects
    for receiver in receivers.values():
        receiver.stop()


def attempts_on(victim):
    sub, delivery, event = victim["subscription"], victim["delivery"], victim["event"]
    s = f"{API}subscriptions/{sub.pk}/"
    new = {"url": "http://127.0.0.1:9/hijacked", "all_events": True, "description": "mine"}
    return [
        ("get", s, None),
        ("put", s, new),
        ("patch", s, {"description": "mine"}),
        ("delete", s, None),
        ("get", s + "stats/", None),
        ("post", s + "ping/", None),
        ("post", s + "rotate-secret/", None),
        ("post", s + "recover/", {"since": "2000-01-01T00:00:00Z"}),
        ("get", f"{API}deliveries/{delivery.pk}/", None),
        ("post", f"{API}deliveries/{delivery.pk}/resend/", None),
        ("get", f"{API}events/{event.pk}/", None),
    ]


@pytest.mark.parametrize("attacker,victim", [("a", "b"), ("b", "a")])
def test_every_action_on_another_tenants_objects_is_a_404_and_changes_nothing(
    two_tenants, attacker, victim
):
    client = two_tenants[attacker]["tenant"].client
    before = snapshot()
    requests_before = len(two_tenants[victim]["receiver"].requests)
    for method, url, data in attempts_on(two_tenants[victim]):
        response = getattr(client, method)(url, data, format="json")
        assert response.status_code == 404, (method, url, response.status_code)
    assert snapshot() == before
    assert len(two_tenants[victim]["receiver"].requests) == requests_before
    # The secret of the victim's webhook did not leave the building either.
    assert Subscription.objects.get(pk=two_tenants[victim]["subscription"].pk).secret == (
        two_tenants[victim]["subscription"].secret
    )


@pytest.mark.parametrize("attacker,victim", [("a", "b"), ("b", "a")])
def test_lists_show_only_your_own_objects(two_tenants, attacker, victim):
    mine, theirs = two_tenants[attacker], two_tenants[victim]
    client = mine["tenant"].client

    def ids(url, params=None):
        return {r["id"] for r in client.get(url, params).json()["results"]}

    assert ids(API + "subscriptions/") == {str(mine["subscription"].pk)}
    assert ids(API + "deliveries/") == {str(mine["delivery"].pk)}
    assert ids(API + "events/") == {str(mine["event"].pk)}
    assert ids(API + "deliveries/", {"subscription": theirs["subscription"].pk}) == set()


def test_objects_of_another_tenant_look_exactly_like_missing_ones(two_tenants):
    client = two_tenants["a"]["tenant"].client
    theirs = client.get(f"{API}subscriptions/{two_tenants['b']['subscription'].pk}/")
    missing = client.get(f"{API}subscriptions/00000000-0000-4000-8000-000000000000/")
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json() == missing.json()


def test_a_user_of_no_organisation_sees_nothing(two_tenants, django_user_model):
    from rest_framework.test import APIClient

    loner = APIClient()
    loner.force_authenticate(django_user_model.objects.create_user("loner"))
    for path in ("subscriptions/", "deliveries/", "events/"):
        assert loner.get(API + path).status_code == 403  # no permissions either


def test_a_superuser_sees_every_tenant(two_tenants, superuser_client):
    body = superuser_client.get(API + "subscriptions/").json()
    assert body["count"] == 2
    assert len(superuser_client.get(API + "deliveries/").json()["results"]) == 2


def test_staff_with_the_model_permission_can_be_allowed_to_see_all(two_tenants, settings):
    """The README's recipe: a resolver returning None for users holding the permission."""
    from django.contrib.auth.models import Permission

    settings.WEBHOOKS_SCOPE_RESOLVER = "tests.api.test_isolation.staff_see_all"
    tenant = two_tenants["a"]["tenant"]
    assert tenant.client.get(API + "subscriptions/").json()["count"] == 1
    tenant.user.is_staff = True
    tenant.user.save()
    tenant.user.user_permissions.add(Permission.objects.get(codename="view_subscription"))
    assert tenant.client.get(API + "subscriptions/").json()["count"] == 2


def staff_see_all(user):
    from example_project.organisations.tenancy import scope_for_user

    if user.is_staff and user.has_perm("webhooks.view_subscription"):
        return None
    return scope_for_user(user)
