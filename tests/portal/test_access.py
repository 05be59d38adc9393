"""Who may open the portal: deny by default, one customer at a time."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.api.conftest import make_tenant
from tests.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db

PORTAL = "/settings/integrations/webhooks/"


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_customer_sees_their_webhooks_and_not_another_customers():
    acme, globex = make_tenant("Acme"), make_tenant("Globex")
    SubscriptionFactory(scope=acme.scope, url="https://acme.example/hook")
    SubscriptionFactory(scope=globex.scope, url="https://globex.example/hook")

    page = signed_in(acme.user).get(PORTAL)

    assert page.status_code == 200
    assert b"https://acme.example/hook" in page.content
    assert b"globex" not in page.content


def test_nobody_signed_in_is_sent_to_the_login(client):
    response = client.get(PORTAL)
    assert response.status_code == 302 and "login" in response["Location"]


def test_a_user_without_the_permission_is_refused(django_user_model):
    acme = make_tenant("Acme")
    acme.user.groups.clear()
    assert signed_in(acme.user).get(PORTAL).status_code == 403


def test_a_customer_outside_the_plan_is_refused():
    acme = make_tenant("Acme")
    acme.organisation.is_pro = False
    acme.organisation.save()
    assert signed_in(acme.user).get(PORTAL).status_code == 403
