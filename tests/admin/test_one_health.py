"""A webhook's state (working / failing / disabled) has one definition
(``webhooks.stats.webhook_state``): the admin's list, its filter and the webhook's page
never contradict each other nor the last delivery shown beside them."""

from __future__ import annotations

import re

import pytest

from tests.admin.helpers import change_url
from tests.api.conftest import API, make_tenant
from tests.receiver import Answer
from webhooks import actions, send_event
from webhooks.models import Delivery

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
