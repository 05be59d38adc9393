"""The OpenAPI schema and the Swagger UI page, which must work without the internet."""

from __future__ import annotations

import re
from io import StringIO

import pytest
import yaml
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.test import Client

pytestmark = pytest.mark.django_db


def test_the_schema_is_valid_openapi_3_and_describes_every_endpoint():
    out = StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    schema = yaml.safe_load(out.getvalue())
    assert schema["openapi"].startswith("3.")
    operations = {op["operationId"] for path in schema["paths"].values() for op in path.values()}
    assert {
        "event_types_list",
        "event_types_retrieve",
        "subscriptions_list",
        "subscriptions_create",
        "subscriptions_retrieve",
        "subscriptions_update",
        "subscriptions_partial_update",
        "subscriptions_destroy",
        "subscriptions_ping_create",
        "subscriptions_rotate_secret_create",
        "subscriptions_recover_create",
        "subscriptions_stats_retrieve",
        "deliveries_list",
        "deliveries_retrieve",
        "deliveries_resend_create",
        "events_list",
        "events_retrieve",
    } <= operations
    components = schema["components"]["schemas"]
    # The secret appears in the create answer only; the password is never read back.
    assert "secret" in components["SubscriptionCreated"]["properties"]
    assert "secret" not in components["Subscription"]["properties"]
    assert "basic_auth_password" not in components["Subscription"]["properties"]
    assert "basic_auth_password" in components["SubscriptionRequest"]["properties"]
    assert {"tokenAuth", "cookieAuth"} <= set(schema["components"]["securitySchemes"])


def test_the_schema_is_served_at_api_schema():
    response = Client(HTTP_HOST="localhost").get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert "/api/webhooks/subscriptions/" in response.json()["paths"]


def test_the_docs_page_uses_only_local_assets():
    response = Client(HTTP_HOST="localhost").get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets)
    for asset in assets:
        assert asset.startswith("/static/"), asset
        assert finders.find(asset.removeprefix("/static/")), f"{asset} is not shipped"
    assert "http://" not in page and "https://" not in page and "//cdn" not in page
    assert '"validatorUrl": null' in page  # Swagger UI would otherwise call an online validator
