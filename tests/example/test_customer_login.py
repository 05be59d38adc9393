"""The example platform's customers sign in on its own page and find Settings > Integrations >
Webhooks there, in the platform's layout; the admin keeps its own sign-in."""

import pytest
from django.test import Client

from tests.api.conftest import make_tenant
from tests.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db

PORTAL = "/settings/integrations/webhooks/"


def test_a_customer_signs_in_and_reaches_their_webhooks_in_the_platforms_layout():
    acme = make_tenant("Acme")
    SubscriptionFactory(scope=acme.scope, url="https://acme.example/hook")
    client = Client()

    sent = client.get(PORTAL)
    assert sent.status_code == 302 and sent["Location"] == f"/accounts/login/?next={PORTAL}"
    form = client.get(sent["Location"])
    assert b"Sign in" in form.content and b"Northstar Assessments" in form.content

    signed_in = client.post(
        "/accounts/login/", {"username": "acme-user", "password": "pw", "next": PORTAL}
    )
    assert signed_in.status_code == 302 and signed_in["Location"] == PORTAL
    page = client.get(PORTAL).content.decode()
    assert "https://acme.example/hook" in page
    assert 'aria-label="Settings"' in page and ">Integrations<" in page
    assert 'aria-current="page">Webhooks</a>' in page


def test_a_wrong_password_says_so_and_signs_nobody_in():
    make_tenant("Acme")
    client = Client()
    page = client.post("/accounts/login/", {"username": "acme-user", "password": "nope"})
    assert page.status_code == 200 and b"do not match" in page.content
    assert client.get(PORTAL).status_code == 302


def test_the_admin_keeps_its_own_sign_in(client):
    response = client.get("/admin/webhooks/subscription/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
