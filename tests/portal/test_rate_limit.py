"""A customer sets, changes and removes their webhook's rate limit in the portal, sees it
on the webhook's page, and a wrong value is refused with the words the admin and the API
use, leaving the webhook as it was."""

from __future__ import annotations

import html

import pytest

from tests.factories import SubscriptionFactory
from tests.portal.test_webhooks import PORTAL, detail, form_data, signed_in, text
from webhooks.models import Subscription
from webhooks.validation import RATE_LIMIT_ACCEPTED

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(acme):
    return signed_in(acme.user)


def test_the_form_offers_a_rate_limit_a_customer_understands(client):
    page = html.unescape(text(client.get(PORTAL + "new/").content.decode()))
    assert "Rate limit (messages per second)" in page
    assert "Events beyond that wait and are sent as soon as the rate allows: none is lost" in page
    assert "Leave empty for no limit" in page


def test_a_rate_limit_set_on_adding_is_shown_changed_and_removed(client):
    response = client.post(PORTAL + "new/", form_data(rate_limit="12"))
    webhook = Subscription.objects.get()
    assert response.status_code == 302 and webhook.rate_limit == 12
    page = text(client.get(detail(webhook)).content.decode())
    assert "Rate limit at most 12 messages per second" in page

    edit = client.get(detail(webhook) + "edit/").content.decode()
    assert 'name="rate_limit" value="12"' in edit
    client.post(detail(webhook) + "edit/", form_data(rate_limit="1"))
    webhook.refresh_from_db()
    assert webhook.rate_limit == 1
    assert "at most 1 message per second" in text(client.get(detail(webhook)).content.decode())

    client.post(detail(webhook) + "edit/", form_data(rate_limit=""))
    webhook.refresh_from_db()
    assert webhook.rate_limit is None
    assert "Rate limit no limit" in text(client.get(detail(webhook)).content.decode())


@pytest.mark.parametrize("typed", ["0", "ten", "1.5", "20000"])
def test_a_wrong_rate_limit_is_refused_with_what_is_accepted(client, acme, typed):
    webhook = SubscriptionFactory(
        scope=acme.scope, url="https://acme.example/hook", rate_limit=5, description="kept"
    )
    response = client.post(detail(webhook) + "edit/", form_data(rate_limit=typed))
    assert response.status_code == 400
    assert list(response.context["form"].errors) == ["rate_limit"]
    page = html.unescape(response.content.decode())
    assert f"The rate limit must be {RATE_LIMIT_ACCEPTED}; “{typed}” is not." in page
    webhook.refresh_from_db()
    assert (webhook.rate_limit, webhook.description) == (5, "kept")
