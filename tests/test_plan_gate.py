"""The host's plan gate (the example: webhooks are for Pro organisations) in the admin, the
API, the fan-out and the sending."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.utils import timezone

import webhooks
from example_project.organisations import webhook_scopes
from tests.api.conftest import API, make_tenant
from tests.factories import SubscriptionFactory
from tests.receiver import Answer
from webhooks import dispatch, outbox
from webhooks.models import Delivery, Event, Subscription

pytestmark = pytest.mark.django_db

WEBHOOKS_URL = "/admin/webhooks/subscription/"


def downgrade(tenant) -> None:
    tenant.organisation.is_pro = False
    tenant.organisation.save()


@pytest.fixture
def pro(receiver):
    tenant = make_tenant("Acme")
    tenant.webhook = tenant.subscription(receiver, description="acme hook")
    return tenant


@pytest.fixture
def free(other_receiver):
    tenant = make_tenant("Globex")
    tenant.webhook = tenant.subscription(other_receiver, description="globex hook")
    downgrade(tenant)
    return tenant


def staff_client(tenant) -> Client:
    tenant.user.is_staff = True
    tenant.user.save()
    client = Client()
    client.force_login(tenant.user)
    return client


@pytest.fixture
def gate_calls(monkeypatch, settings):
    """The example's gate, counting its calls (scope by scope)."""
    calls = []

    def counting(scope):
        calls.append(scope)
        return webhook_scopes.is_pro(scope)

    monkeypatch.setattr(webhook_scopes, "counting_gate", counting, raising=False)
    settings.WEBHOOKS_PLAN_GATE = "example_project.organisations.webhook_scopes.counting_gate"
    return calls


# -- the admin --------------------------------------------------------------------------------


def test_staff_outside_the_plan_see_no_webhooks_and_cannot_add_one(pro, free):
    client = staff_client(free)

    index = client.get("/admin/")
    assert WEBHOOKS_URL.encode() not in index.content  # no Webhooks section
    page = client.get(WEBHOOKS_URL)
    assert list(page.context["cl"].result_list) == []
    assert b"plan does not include webhooks" in page.content
    assert client.get(WEBHOOKS_URL + "add/").status_code == 403
    assert client.get(f"{WEBHOOKS_URL}{free.webhook.pk}/change/").status_code == 302
    assert client.get("/admin/webhooks/delivery/").context["cl"].result_list.count() == 0


def test_staff_of_a_pro_organisation_keep_their_webhooks(pro, free):
    client = staff_client(pro)
    assert WEBHOOKS_URL.encode() in client.get("/admin/").content
    assert list(client.get(WEBHOOKS_URL).context["cl"].result_list) == [pro.webhook]
    assert client.get(WEBHOOKS_URL + "add/").status_code == 200


def test_superusers_see_every_webhook_with_a_marker_on_those_outside_the_plan(pro, free):
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("root", password="pw"))

    page = client.get(WEBHOOKS_URL)
    assert set(page.context["cl"].result_list) == {pro.webhook, free.webhook}
    rows = {
        row.split("</tr>")[0].count("plan does not include webhooks"): row
        for row in page.content.decode().split("<tr")[1:]
        if "hook</span>" in row
    }
    assert "globex hook" in rows[1] and "acme hook" in rows[0]
    change = client.get(f"{WEBHOOKS_URL}{free.webhook.pk}/change/")
    assert b"Plan does not include webhooks: nothing is delivered" in change.content
    assert b"Plan does not include" not in client.get(f"{WEBHOOKS_URL}{pro.webhook.pk}/change/")


# -- the API ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["subscriptions/", "deliveries/", "events/", "event-types/"])
def test_the_api_tells_a_customer_outside_the_plan_why_it_refuses(pro, free, path):
    refused = free.client.get(API + path)
    assert refused.status_code == 403
    assert "plan does not include webhooks" in refused.json()["detail"]
    assert pro.client.get(API + path).status_code == 200


def test_the_api_refuses_changes_outside_the_plan(free, other_receiver):
    created = free.client.post(
        API + "subscriptions/", {"url": other_receiver.url, "all_events": True}, format="json"
    )
    assert created.status_code == 403
    assert Subscription.objects.filter(scope=free.scope).count() == 1


# -- delivery ---------------------------------------------------------------------------------


def test_fan_out_records_the_event_but_owes_nothing_outside_the_plan(
    pro, free, commit, receiver, other_receiver
):
    with commit():
        ours = webhooks.send_event("webhook.test", {"n": 1}, scope=pro.scope)
        theirs = webhooks.send_event("webhook.test", {"n": 2}, scope=free.scope)

    assert [r.json()["data"] for r in receiver.requests] == [{"n": 1}]
    assert other_receiver.requests == []
    theirs = Event.objects.get(pk=theirs.pk)
    assert theirs.fanned_out_at is not None  # recorded and done with, not left to the sweeper
    assert not Delivery.objects.filter(event=theirs).exists()
    assert Delivery.objects.filter(event=ours.pk).count() == 1


def test_fan_out_asks_the_gate_once_per_scope_of_a_batch(pro, free, gate_calls):
    for tenant in (pro, free):
        for n in range(3):  # more webhooks: still one question per scope
            SubscriptionFactory(
                scope=tenant.scope,
                all_events=True,
                url=f"https://{tenant.organisation.slug}{n}.ex/",
            )
    events = [
        outbox.record_event("webhook.test", {"n": n}, scope=tenant.scope)
        for n in range(4)
        for tenant in (pro, free)
    ]

    created = outbox.fan_out_many([e.pk for e in events])

    assert sorted(gate_calls) == sorted([pro.scope, free.scope])
    assert Delivery.objects.filter(pk__in=created, subscription__scope=free.scope).count() == 0
    assert len(created) == 4 * 4


def test_a_gate_that_raises_refuses_without_breaking_the_fan_out(
    pro, free, monkeypatch, settings, caplog
):
    def broken(scope):
        raise RuntimeError("billing service down")

    monkeypatch.setattr(webhook_scopes, "broken_gate", broken, raising=False)
    settings.WEBHOOKS_PLAN_GATE = "example_project.organisations.webhook_scopes.broken_gate"
    events = [outbox.record_event("webhook.test", {}, scope=t.scope) for t in (pro, free)]

    with caplog.at_level(logging.ERROR, logger="webhooks"):
        assert outbox.fan_out_many([e.pk for e in events]) == []

    assert Event.objects.filter(fanned_out_at__isnull=True).count() == 0
    assert len([r for r in caplog.records if "WEBHOOKS_PLAN_GATE" in r.getMessage()]) == 1


def test_pending_deliveries_are_held_while_the_plan_excludes_webhooks(
    pro, commit, receiver, run_due
):
    receiver.answer(Answer(status=500))
    with commit():
        webhooks.send_event("webhook.test", {"n": 1}, scope=pro.scope)
    delivery = Delivery.objects.get(subscription=pro.webhook)
    assert delivery.status == "pending" and delivery.attempt_count == 1  # a retry is due later

    downgrade(pro)
    run_due(after=timedelta(seconds=30))  # the retry is due (after 5 s)
    delivery.refresh_from_db()
    assert delivery.attempt_count == 1 and delivery.status == "pending"  # held, not sent
    assert delivery.leased_until is None
    # Not due again for a while: the sweeper does not claim it again and again.
    assert delivery.next_attempt_at > timezone.now() + timedelta(seconds=dispatch.PLAN_HOLD - 60)

    pro.organisation.is_pro = True
    pro.organisation.save()
    run_due(after=timedelta(seconds=dispatch.PLAN_HOLD + 60))
    delivery.refresh_from_db()
    assert delivery.status == "succeeded" and delivery.attempt_count == 2


def test_sending_asks_the_gate_once_per_scope_of_a_batch(pro, free, gate_calls):
    now = timezone.now()
    for tenant in (pro, free):
        for _ in range(3):
            event = Event.objects.create(
                type="webhook.test", data={}, scope=tenant.scope, occurred_at=now
            )
            Delivery.objects.create(event=event, subscription=tenant.webhook, next_attempt_at=now)
    token, ids = outbox.claim_due(50)

    dispatch.send_claimed(ids, token)

    assert sorted(gate_calls) == sorted([pro.scope, free.scope])
    assert Delivery.objects.filter(subscription=pro.webhook, status="succeeded").count() == 3
    assert Delivery.objects.filter(subscription=free.webhook, attempt_count=0).count() == 3


def test_a_gate_whose_query_fails_does_not_break_the_fan_out(pro, monkeypatch, settings, caplog):
    def broken_query(scope):
        with connection.cursor() as cursor:
            cursor.execute("SELECT plan FROM no_such_table")

    monkeypatch.setattr(webhook_scopes, "broken_query", broken_query, raising=False)
    settings.WEBHOOKS_PLAN_GATE = "example_project.organisations.webhook_scopes.broken_query"
    event = outbox.record_event("webhook.test", {}, scope=pro.scope)

    with caplog.at_level(logging.CRITICAL, logger="webhooks"):
        assert outbox.fan_out_many([event.pk]) == []

    assert Event.objects.get(pk=event.pk).fanned_out_at is not None
