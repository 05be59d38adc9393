"""A webhook's URL and credentials: the admin and the API refuse the same things, each
with one specific message, the same words in both (``webhooks.validation``)."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tests.admin.helpers import ADD_URL, change_url, form_errors
from tests.admin.test_webhook_form import form_data
from tests.api.conftest import API
from tests.factories import SubscriptionFactory
from webhooks.models import Subscription

pytestmark = pytest.mark.django_db

SUBS = API + "subscriptions/"
LONG_URL = "https://example.com/" + "a" * (5037 - len("https://example.com/"))


@pytest.fixture
def admin_client(db):
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("root", password="pw"))
    return client


def admin_refusal(client, field="url", **fields) -> list[str]:
    response = client.post(ADD_URL, form_data(**fields))
    assert response.status_code == 200, "the admin saved it"
    return list(form_errors(response)[field])


def api_refusal(tenant, field="url", **fields) -> list[str]:
    response = tenant.client.post(SUBS, {"all_events": True, **fields}, format="json")
    assert response.status_code == 400, response.json()
    return response.json()[field]


@pytest.mark.parametrize(
    "url, words",
    [
        ("javascript:alert(1)", "“javascript:” URLs are not accepted"),
        ("file:///etc/passwd", "“file:” URLs are not accepted"),
        ("http://3232235777/x", "“3232235777” is an IP address written as one number"),
        ("http://0x7f000001/x", "is an IP address written as one number (127.0.0.1)"),
        (LONG_URL, "The URL is too long: 5037 characters, at most 2000"),
    ],
)
def test_a_refused_url_gets_one_specific_message_the_same_in_admin_and_api(
    admin_client, tenant_a, settings, url, words
):
    settings.WEBHOOKS_ALLOWED_NETWORKS = []
    in_admin = admin_refusal(admin_client, url=url)
    in_api = api_refusal(tenant_a, url=url)
    assert in_admin == in_api, (in_admin, in_api)
    assert len(in_admin) == 1 and words in in_admin[0], in_admin
    assert "no scheme" not in in_admin[0] and "Enter a valid URL" not in in_admin[0]
    assert not Subscription.objects.exists()


def test_a_refused_scheme_says_what_is_accepted(tenant_a):
    (message,) = api_refusal(tenant_a, url="javascript:alert(1)")
    assert "https://" in message


def test_the_url_input_does_not_cut_a_pasted_url(admin_client):
    html = admin_client.get(ADD_URL).content.decode()
    url_input = re.search(r"<input[^>]*name=\"url\"[^>]*>", html).group()
    assert "maxlength" not in url_input


def test_plain_http_to_a_public_address_is_refused_unless_allowed(admin_client, tenant_a, settings):
    settings.WEBHOOKS_ALLOWED_NETWORKS = []
    url = "http://8.8.8.8/hook"
    in_admin = admin_refusal(admin_client, url=url)
    assert in_admin == api_refusal(tenant_a, url=url)
    assert "Use an https:// URL" in in_admin[0]
    # https to the same address is fine; so is http when the platform allows it.
    assert (
        tenant_a.client.post(
            SUBS, {"url": "https://8.8.8.8/hook", "all_events": True}, format="json"
        ).status_code
        == 201
    )
    settings.WEBHOOKS_ALLOW_HTTP = True
    assert admin_client.post(ADD_URL, form_data(url=url)).status_code == 302


def test_plain_http_to_an_allowed_network_is_accepted(admin_client, settings):
    settings.WEBHOOKS_ALLOWED_NETWORKS = ["127.0.0.0/8"]  # a receiver on this machine
    assert admin_client.post(ADD_URL, form_data(url="http://127.0.0.1:9/hook")).status_code == 302


def test_a_second_webhook_with_the_same_url_in_one_account_is_refused(admin_client, tenant_a):
    url = "http://127.0.0.1:9/hook"
    first = SubscriptionFactory(
        url=url, scope=tenant_a.scope, description="Grades", all_events=True
    )
    in_admin = admin_refusal(admin_client, url=url)
    in_api = api_refusal(tenant_a, url=url)
    assert f"already has a webhook for this URL: “Grades” ({first.pk})" in in_api[0]
    # The admin's message links to the one there is.
    assert f'<a href="{change_url(first)}">' in in_admin[0]
    assert Subscription.objects.count() == 1
    # Changing the existing one keeps its URL; another account may use the same URL.
    SubscriptionFactory(url=url, scope="someone-else")
    patch = tenant_a.client.patch(SUBS + f"{first.pk}/", {"description": "x"}, format="json")
    assert patch.status_code == 200, patch.json()


def test_a_basic_auth_password_with_a_tab_is_refused(admin_client, tenant_a):
    fields = {"basic_auth_username": "hooks", "basic_auth_password": "pa\tss"}
    in_admin = admin_refusal(admin_client, "basic_auth_password", **fields)
    in_api = api_refusal(tenant_a, "basic_auth_password", url="http://127.0.0.1:9/h", **fields)
    assert in_admin == in_api
    assert "control characters" in in_admin[0] and "pa\tss" not in in_admin[0]
    assert not Subscription.objects.exists()
