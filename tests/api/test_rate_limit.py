"""A webhook's rate limit through the API: read, written, cleared with null, described in
the schema, and refused with the admin's words, leaving the webhook as it was."""

from __future__ import annotations

from io import StringIO

import pytest
import yaml
from django.core.management import call_command

from tests.api.conftest import API
from tests.api.test_same_rules_as_the_admin import admin_client, admin_refusal  # noqa: F401
from webhooks.models import Subscription
from webhooks.validation import RATE_LIMIT_ACCEPTED

pytestmark = pytest.mark.django_db

SUBS = API + "subscriptions/"


def test_a_rate_limit_is_created_read_changed_and_cleared(tenant_a, receiver):
    created = tenant_a.client.post(
        SUBS, {"url": receiver.url, "all_events": True, "rate_limit": 20}, format="json"
    )
    assert created.status_code == 201, created.json()
    assert created.json()["rate_limit"] == 20
    webhook = Subscription.objects.get(pk=created.json()["id"])
    assert webhook.rate_limit == 20
    one = SUBS + f"{webhook.pk}/"
    assert tenant_a.client.get(one).json()["rate_limit"] == 20
    assert tenant_a.client.patch(one, {"rate_limit": 3}, format="json").json()["rate_limit"] == 3
    cleared = tenant_a.client.patch(one, {"rate_limit": None}, format="json")
    assert cleared.status_code == 200 and cleared.json()["rate_limit"] is None
    webhook.refresh_from_db()
    assert webhook.rate_limit is None
    # Left out of a change: kept.
    tenant_a.client.patch(one, {"rate_limit": 9}, format="json")
    tenant_a.client.patch(one, {"description": "x"}, format="json")
    webhook.refresh_from_db()
    assert webhook.rate_limit == 9


@pytest.mark.parametrize("sent", [0, -1, 10001, 2.5, "ten", True, [5], {"n": 5}])
def test_a_bad_rate_limit_is_refused_with_what_is_accepted_and_nothing_changes(
    tenant_a, receiver, sent
):
    webhook = tenant_a.subscription(receiver, rate_limit=4, description="kept")
    response = tenant_a.client.patch(
        SUBS + f"{webhook.pk}/", {"rate_limit": sent, "description": "changed"}, format="json"
    )
    assert response.status_code == 400
    assert list(response.json()) == ["rate_limit"]
    [message] = response.json()["rate_limit"]
    assert message.startswith(f"The rate limit must be {RATE_LIMIT_ACCEPTED}; “")
    webhook.refresh_from_db()
    assert webhook.rate_limit == 4 and webhook.description == "kept"


def test_the_admin_and_the_api_refuse_a_rate_limit_in_the_same_words(
    admin_client,  # noqa: F811
    tenant_a,
    receiver,
):
    in_admin = admin_refusal(admin_client, field="rate_limit", rate_limit="0")
    response = tenant_a.client.post(
        SUBS, {"url": receiver.url, "all_events": True, "rate_limit": "0"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["rate_limit"] == in_admin


def test_the_schema_describes_the_rate_limit():
    out = StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    schema = yaml.safe_load(out.getvalue())
    field = schema["components"]["schemas"]["Subscription"]["properties"]["rate_limit"]
    assert field["type"] == "integer" and field["nullable"] is True
    assert (field["minimum"], field["maximum"]) == (1, 10000)
    assert "messages per second" in field["description"]
