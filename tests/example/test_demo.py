"""The demo: receiver, seed, simulated activity, and the README's generated event table."""

import base64
import io
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.management import call_command

import webhooks
from example_project.demo import scenario
from example_project.demo.seed import ADMIN_USERNAME, DEMO_ORGANISATIONS
from example_project.demo_receiver.models import ReceivedWebhook
from example_project.organisations.models import Organisation
from webhooks.delivery import close_connections
from webhooks.management.commands.webhooks_event_table import event_table
from webhooks.models import Event, Subscription
from webhooks.registry import registry
from webhooks.signing import generate_secret, signature_header

from .test_catalogue_events import CATALOGUE

ROOT = Path(__file__).resolve().parents[2]
INBOX = "/demo-receiver/acme/"


def signed(secret, body: bytes, *, msg_id="msg_1", timestamp=None):
    timestamp = int(time.time()) if timestamp is None else timestamp
    return {
        "HTTP_WEBHOOK_ID": msg_id,
        "HTTP_WEBHOOK_TIMESTAMP": str(timestamp),
        "HTTP_WEBHOOK_SIGNATURE": signature_header([secret], msg_id, timestamp, body),
    }


@pytest.fixture
def inbox_subscription(db):
    return Subscription.objects.create(url=f"http://127.0.0.1:8000{INBOX}", all_events=True)


BODY = json.dumps({"id": "e1", "type": "item.created", "data": {"id": 42}}).encode()


def test_demo_receiver_accepts_a_genuine_signed_request(client, inbox_subscription):
    response = client.post(
        INBOX, BODY, content_type="application/json", **signed(inbox_subscription.secret, BODY)
    )
    assert response.status_code == 204
    stored = ReceivedWebhook.objects.get()
    assert (stored.name, stored.verified, stored.event_type) == ("acme", True, "item.created")
    page = client.get(INBOX).content.decode()
    assert "item.created" in page and "&quot;id&quot;: 42" in page and ">yes<" in page


def test_demo_receiver_refuses_a_forged_request(client, inbox_subscription):
    forged = signed(generate_secret(), BODY)  # signed, but not with the webhook's secret
    response = client.post(INBOX, BODY, content_type="application/json", **forged)
    assert response.status_code == 401
    tampered = signed(inbox_subscription.secret, BODY)
    response = client.post(INBOX, BODY.replace(b"42", b"43"), "application/json", **tampered)
    assert response.status_code == 401
    unsigned = client.post(INBOX, BODY, content_type="application/json")
    assert unsigned.status_code == 401
    old = signed(inbox_subscription.secret, BODY, timestamp=int(time.time()) - 3600)
    assert client.post(INBOX, BODY, "application/json", **old).status_code == 401
    assert list(ReceivedWebhook.objects.values_list("verified", flat=True)) == [False] * 4
    assert ">no<" in client.get(INBOX).content.decode()


def test_demo_receiver_checks_basic_auth_when_the_webhook_has_it(client, inbox_subscription):
    inbox_subscription.basic_auth_username = "demo"
    inbox_subscription.basic_auth_password = "pa:ss"
    inbox_subscription.save()
    headers = signed(inbox_subscription.secret, BODY)

    def post(credentials):
        auth = {}
        if credentials:
            auth["HTTP_AUTHORIZATION"] = "Basic " + base64.b64encode(credentials).decode()
        return client.post(INBOX, BODY, "application/json", **headers, **auth).status_code

    assert post(None) == 401
    assert post(b"demo:wrong") == 401
    assert post(b"demo:pa:ss") == 204
    assert "authorization" not in ReceivedWebhook.objects.filter(verified=True).get().headers


@pytest.mark.django_db(transaction=True)
def test_a_real_delivery_lands_verified_in_the_demo_receiver(live_server):
    sub = Subscription.objects.create(
        url=f"{live_server.url}/demo-receiver/live/",
        all_events=True,
        basic_auth_username="demo",
        basic_auth_password="secret",
    )
    try:
        webhooks.send_event("webhook.test", {"hello": "world"})  # autocommit: delivered now
    finally:
        close_connections()  # no kept-alive connection left to the live server's threads

    stored = ReceivedWebhook.objects.get(name="live")
    assert stored.verified, stored.error
    assert stored.payload["data"] == {"hello": "world"}
    assert sub.deliveries.get().status == "succeeded"


def test_seed_demo_is_idempotent(db):
    first, second = io.StringIO(), io.StringIO()
    call_command("seed_demo", stdout=first)
    counts = {
        model.__name__: model.objects.count() for model in (Organisation, Subscription, Event)
    }
    call_command("seed_demo", stdout=second)
    assert counts == {
        model.__name__: model.objects.count() for model in (Organisation, Subscription, Event)
    }
    assert counts["Organisation"] == len(DEMO_ORGANISATIONS) == counts["Subscription"]
    assert counts["Event"] == 0  # seeding raises nothing: the simulation does
    assert "username 'admin', password 'admin'" in first.getvalue()
    assert "/demo-receiver/northwind/" in first.getvalue()
    from django.contrib.auth import get_user_model

    admin = get_user_model().objects.get(username=ADMIN_USERNAME)
    assert admin.is_superuser and admin.check_password("admin")
    for org in Organisation.objects.all():
        sub = Subscription.objects.get(scope=org.scope)
        assert sub.url == f"http://127.0.0.1:8000/demo-receiver/{org.slug}/" and sub.all_events


def test_simulate_activity_raises_every_event_type(db, subscribe, receiver, other_receiver, commit):
    call_command("seed_demo", stdout=io.StringIO())
    Subscription.objects.all().delete()  # nothing listens on :8000 in tests
    northwind = Organisation.objects.get(slug="northwind")
    contoso = Organisation.objects.get(slug="contoso")
    subscribe(receiver, scope=northwind.scope)
    subscribe(other_receiver, scope=contoso.scope)
    out = io.StringIO()

    with commit():
        call_command("simulate_activity", stdout=out)

    assert set(receiver.types()) == CATALOGUE
    assert other_receiver.requests == []
    for request in receiver.requests:  # every payload names its organisation
        data = request.json()["data"]
        assert (data.get("organisation_id") or data["organisation"]["id"]) == northwind.pk
    output = out.getvalue()
    assert f"{len(scenario.steps())}/{len(scenario.steps())}" in output  # the progress bar
    assert re.search(r"exam\.ready\s+Test Administration\s+3", output)  # the summary table
    assert f"{len(CATALOGUE)} event types raised" in output
    assert "not raised by this scenario: article.approved" in output  # the test app's types


def test_simulate_activity_can_run_again(db, commit):
    with commit():
        call_command("simulate_activity", stdout=io.StringIO())
        call_command("simulate_activity", "--organisation", "contoso", stdout=io.StringIO())
    assert Event.objects.filter(type="user.registered").count() == 6


def readme_event_table() -> str:
    readme = (ROOT / "README.md").read_text()
    match = re.search(
        r"<!-- event-table:start.*?-->\n(.*?)<!-- event-table:end -->", readme, re.DOTALL
    )
    assert match, "README.md lost its event table markers"
    return match.group(1)


def test_readme_event_table_is_the_registry():
    # The example project's own registry (the test settings add a test app's events).
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "example_project.settings"}
    env.pop("EXAMPLE_STORE_ENABLED", None)  # the README shows the full platform
    table = subprocess.run(
        [sys.executable, "manage.py", "webhooks_event_table"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "| `store.purchase` | Store |" in table
    assert readme_event_table() == table, (
        "README.md's event table is stale: paste the output of "
        "`manage.py webhooks_event_table` between its markers."
    )


def test_event_table_command_prints_the_registry():
    out = io.StringIO()
    call_command("webhooks_event_table", stdout=out)
    assert out.getvalue() == event_table()
    assert "| `article.shared` | Articles | Raised from code. |" in out.getvalue()


def test_event_table_escapes_pipes_and_lists_every_type():
    table = event_table().splitlines()
    assert table[:2] == ["| event | category | description |", "|---|---|---|"]
    assert len(table) == 2 + len(registry.event_types)
    assert all(line.count(" | ") == 2 for line in table[2:])


@pytest.mark.parametrize(
    "app", ["authoring", "testing", "learning", "store", "demo_receiver", "organisations"]
)
def test_admin_lists_and_adds_every_domain_model(admin_client, world, app):
    from django.apps import apps
    from django.contrib import admin

    models = list(apps.get_app_config(app).get_models())
    assert [m for m in models if not admin.site.is_registered(m)] == []
    for model in models:
        base = f"/admin/{app}/{model._meta.model_name}/"
        assert admin_client.get(base).status_code == 200, base
        assert admin_client.get(f"{base}add/").status_code == 200, base
