"""A webhook's state (working / failing / disabled) has one definition
(``webhooks.stats.webhook_state``): the admin's list, its filter and the webhook's page
never contradict each other nor the last delivery shown beside them."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from tests.admin.helpers import change_url, seed
from tests.api.conftest import API, make_tenant
from tests.factories import SubscriptionFactory
from tests.receiver import Answer
from webhooks import actions, send_event, stats
from webhooks.models import Delivery, Subscription

pytestmark = pytest.mark.django_db

WEBHOOKS_URL = "/admin/webhooks/subscription/"


def list_row(html: str, text: str) -> str:
    [row] = [r for r in re.findall(r"<tr.*?</tr>", html, re.S) if text in r]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row))


def page_state(html: str) -> str:
    start = html.index('id="wh-state"')
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html[start : start + 500]))


def listed(client, query: str) -> set[str]:
    return {str(w) for w in client.get(WEBHOOKS_URL + query).context["cl"].result_list}


@pytest.fixture
def tenant_a(db):
    return make_tenant("Acme")


@pytest.fixture
def gone_then_re_enabled(tenant_a, receiver, commit):
    """A receiver answering 410 disabled the webhook; its owner switched it back on
    through the API; a test event then got 410 again."""
    receiver.default = Answer(410)
    webhook = tenant_a.subscription(receiver, ["article.created"], description="Gone one")
    with commit():
        send_event("article.created", {"n": 1}, scope=tenant_a.scope)
    webhook.refresh_from_db()
    assert not webhook.is_active and "410" in webhook.disabled_reason
    answer = tenant_a.client.patch(
        f"{API}subscriptions/{webhook.pk}/", {"is_active": True}, format="json"
    )
    assert answer.status_code == 200
    with commit():
        actions.send_test_event(webhook)  # a manual attempt: 410 again
    webhook.refresh_from_db()
    assert webhook.is_active  # a failed manual attempt does not feed the disabling clock
    return webhook


def test_a_re_enabled_webhook_failing_again_is_failing_beside_its_failed_delivery(
    gone_then_re_enabled, admin_client
):
    row = list_row(admin_client.get(WEBHOOKS_URL).content.decode(), "Gone one")
    assert "HTTP 410" in row
    assert "Working" not in row and "Failing" in row

    state = page_state(admin_client.get(change_url(gone_then_re_enabled)).content.decode())
    assert "Working" not in state and "Failing" in state
    assert "The last attempt failed: HTTP 410" in state

    # The list's filter says the same.
    assert listed(admin_client, "?state=failing") == {"Gone one"}
    assert listed(admin_client, "?state=working") == set()


def test_the_last_delivery_beside_the_state_is_the_last_attempt(
    tenant_a, receiver, commit, admin_client
):
    """A newer delivery failed, then an older one was resent by hand and succeeded: the
    receiver works again, and the row says so on both sides."""
    webhook = tenant_a.subscription(receiver, ["article.created"], description="Back again")
    with commit():
        send_event("article.created", {"n": 1}, scope=tenant_a.scope)  # 200
    older = Delivery.objects.get(subscription=webhook)
    receiver.answer(Answer(500))
    with commit():
        send_event("article.created", {"n": 2}, scope=tenant_a.scope)  # 500, to be retried
    webhook.refresh_from_db()
    assert webhook.consecutive_failures == 1
    with commit():
        actions.resend_one(older)  # 200: the receiver is back
    webhook.refresh_from_db()
    assert webhook.consecutive_failures == 0

    row = list_row(admin_client.get(WEBHOOKS_URL).content.decode(), "Back again")
    assert "Working" in row and "HTTP 200" in row
    assert "failed" not in row and "retrying" not in row
    assert "Working" in page_state(admin_client.get(change_url(webhook)).content.decode())


def test_the_admin_and_the_portal_show_each_webhook_in_the_same_state_with_the_same_rate(
    tenant_a, admin_client
):
    now = timezone.now()
    S, F = Delivery.Status.SUCCEEDED, Delivery.Status.FAILED

    def webhook(name, **fields):
        return SubscriptionFactory(scope=tenant_a.scope, description=name, **fields)

    seed(webhook("Fine"), 2, status=S, created_at=now - timedelta(hours=1), attempts=True)
    streak = webhook("Streak", consecutive_failures=2, failing_since=now - timedelta(hours=2))
    seed(streak, 2, status=F, status_code=503, created_at=now - timedelta(hours=1), attempts=True)
    last_failed = webhook("Last failed")
    seed(last_failed, 1, status=S, created_at=now - timedelta(hours=3), attempts=True)
    seed(
        last_failed,
        1,
        status=F,
        status_code=410,
        created_at=now - timedelta(hours=1),
        attempts=True,
    )
    webhook("Off", is_active=False, disabled_reason="Switched off by alice: moving hosts")
    webhook("New")

    portal = Client()
    portal.force_login(tenant_a.user)
    admin_list = admin_client.get(WEBHOOKS_URL).content.decode()
    portal_list = portal.get("/settings/integrations/webhooks/").content.decode()
    expected = {
        "Fine": "Working",
        "Streak": "Failing",
        "Last failed": "Failing",
        "Off": "Disabled",
        "New": "No deliveries yet",
    }
    rows = stats.with_last_attempt(Subscription.objects.all())
    day = stats.day_rates(rows.values_list("pk", flat=True))
    for row in rows:
        state = stats.webhook_state(row, stats.last_attempt_of(row))
        attempts, succeeded = day.get(row.pk, (0, 0))
        rate = stats.percent_text(stats.rate(succeeded, attempts))
        name = row.description
        assert state.label == expected[name], name
        admin_row, portal_row = list_row(admin_list, name), list_row(portal_list, name)
        admin_page = page_state(admin_client.get(change_url(row)).content.decode())
        portal_page = portal.get(f"/settings/integrations/webhooks/{row.pk}/").content.decode()
        portal_state = portal_page[portal_page.index('id="whp-state"') :][:600]
        for shown in (admin_row, portal_row, admin_page, re.sub(r"<[^>]+>", " ", portal_state)):
            assert state.label in shown, (name, shown)
            for other in set(expected.values()) - {state.label}:
                assert other not in shown, (name, other, shown)
        assert f" {rate} " in admin_row and f" {rate} " in portal_row, name
        assert state.detail in re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", portal_state))
        key = state.key
        assert name in listed(admin_client, f"?state={key}"), (name, key)


@pytest.mark.parametrize(
    "fields, last, key, words",
    [
        ({"is_active": False, "disabled_reason": ""}, None, "disabled", "Switched off."),
        (
            {"is_active": False, "disabled_reason": "Gone"},
            stats.LastAttempt(timezone.now(), True, 200, ""),
            "disabled",
            "Gone",
        ),
        ({"consecutive_failures": 1}, None, "failing", "1 failed attempt in a row."),
        (
            {"consecutive_failures": 0},
            stats.LastAttempt(timezone.now(), False, None, "connection_refused"),
            "failing",
            "The last attempt failed: Connection refused",
        ),
        (
            {"consecutive_failures": 0},
            stats.LastAttempt(timezone.now(), False, None, "no such kind"),
            "failing",
            "The last attempt failed: No answer",
        ),
        ({}, stats.LastAttempt(timezone.now(), True, 204, ""), "working", "succeeded"),
        ({}, None, "active", "next event"),
    ],
)
def test_the_state_is_read_from_the_stored_fields_and_the_last_attempt(fields, last, key, words):
    state = stats.webhook_state(Subscription(**fields), last)
    assert state.key == key and state.label == stats.STATE_LABELS[key]
    assert words in state.detail


def test_the_state_filter_counts_each_state_when_facets_are_shown(
    gone_then_re_enabled, admin_client
):
    response = admin_client.get(WEBHOOKS_URL + "?_facets=1&state=failing")
    assert response.status_code == 200
    html = re.sub(r"\s+", " ", response.content.decode())
    assert re.search(r"Failing \(1\)", html) and re.search(r"Working \(0\)", html)


def test_the_webhooks_pages_say_from_which_hour_each_success_rate_counts(tenant_a, admin_client):
    """The windows count whole hours (24 to 25 hours): the admin's and the portal's page of
    the webhook say where each starts, not a bare "last 24 hours"."""
    webhook = SubscriptionFactory(scope=tenant_a.scope)
    seed(webhook, 1, status=Delivery.Status.SUCCEEDED, attempts=True)
    portal = Client()
    portal.force_login(tenant_a.user)

    def starts() -> list[str]:
        now = timezone.now()
        return [
            timezone.localtime(stats.window_start(now, length)).strftime("%Y-%m-%d %H:%M")
            for length in (stats.DAY, stats.WEEK)
        ]

    before = starts()
    pages = {
        "admin": admin_client.get(change_url(webhook)).content.decode(),
        "portal": portal.get(f"/settings/integrations/webhooks/{webhook.pk}/").content.decode(),
    }
    after = starts()  # the same, unless an hour began meanwhile
    for where, html in pages.items():
        text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
        assert "last 24 hours" not in text.split("Response time")[0], where
        assert any(
            f"since {day}" in text and f"since {week}" in text for day, week in (before, after)
        ), where
