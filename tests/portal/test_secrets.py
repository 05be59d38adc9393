"""A webhook's signing secret in the portal: shown once after a rotation (with a copy
button), never again, never in the session, a URL, a log or a later page; rotation with a
chosen overlap, by customers who may change their webhooks, and only their own."""

from __future__ import annotations

import json
import logging
import re
import time
import types
import uuid
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.messages.storage.fallback import FallbackStorage
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.test import RequestFactory
from django.utils import timezone

from tests.api.conftest import make_tenant
from tests.factories import SubscriptionFactory
from tests.portal.helpers import PORTAL, messages_of, read_only, signed_in
from webhooks.admin import reveal
from webhooks.portal.views_secrets import reveal_new_secret

pytestmark = pytest.mark.django_db

DAY = 24 * 3600


def secret_url(webhook) -> str:
    return f"{PORTAL}{webhook.pk}/secret/"


def shown_secret(html: str) -> str | None:
    found = re.search(r'id="whp-secret-value"[^>]*value="([^"]+)"', html)
    return found.group(1) if found else None


def session_text(client) -> str:
    """The client's session as the database row holds it, raw and decoded."""
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    raw = Session.objects.get(session_key=key).session_data
    return raw + json.dumps(SessionStore(session_key=key).load())


@pytest.fixture
def webhook(acme):
    return SubscriptionFactory(scope=acme.scope, all_events=True)


def test_a_rotated_secret_is_shown_once_with_a_copy_button_and_never_again(acme, webhook, caplog):
    old = webhook.secret
    client = signed_in(acme.user)
    caplog.set_level(logging.DEBUG)

    rotated = client.post(secret_url(webhook), {"overlap": "3600"})
    webhook.refresh_from_db()
    new = webhook.secret
    assert new != old
    # Post/redirect/get to the secret page; the secret is in neither the URL nor the session.
    assert rotated.status_code == 302 and rotated["Location"] == secret_url(webhook)
    assert new not in session_text(client)

    page = client.get(secret_url(webhook))
    html = page.content.decode()
    assert shown_secret(html) == new
    assert "shown only this once" in html
    assert '<label for="whp-secret-value">Signing secret</label>' in html
    assert "data-whp-copy=" in html and 'aria-live="polite"' in html
    assert "webhooks/portal-copy.js" in html
    assert "no-store" in page["Cache-Control"]
    # The old one still signs, for the hour chosen, and the page says until when.
    assert webhook.previous_secret == old
    expected = timezone.now() + timedelta(hours=1)
    assert abs((webhook.previous_secret_expires_at - expected).total_seconds()) < 60
    assert "The previous secret still signs until" in html
    assert "The previous secret still signs until" in " ".join(messages_of(page))
    assert new not in session_text(client)

    again = client.get(secret_url(webhook)).content.decode()
    assert new not in again and old not in again
    assert "cannot be shown again" in again
    assert new not in caplog.text and old not in caplog.text


def test_the_overlap_defaults_to_24_hours_and_none_ends_the_old_secret_at_once(acme, webhook):
    client = signed_in(acme.user)
    html = client.get(secret_url(webhook)).content.decode()
    checked = re.search(r'<input[^>]*name="overlap"[^>]*checked[^>]*>', html).group(0)
    assert f'value="{DAY}"' in checked
    for label in ["None: the old secret stops signing at once", "1 hour", "24 hours", "7 days"]:
        assert label in html

    page = client.post(secret_url(webhook), {"overlap": "0"}, follow=True)
    webhook.refresh_from_db()
    assert webhook.signing_secrets() == [webhook.secret]  # the old one no longer signs
    assert messages_of(page) == ["The signing secret was rotated; only the new one signs."]
    assert "still signs until" not in page.content.decode()

    client.post(secret_url(webhook), {"overlap": str(7 * DAY)})
    webhook.refresh_from_db()
    expected = timezone.now() + timedelta(days=7)
    assert abs((webhook.previous_secret_expires_at - expected).total_seconds()) < 60


@pytest.mark.parametrize(
    ("overlap", "error"),
    [
        ("", "Choose how long the old secret keeps signing."),
        ("999", "Choose one of the offered overlaps: none, 1 hour, 24 hours or 7 days."),
        ("forever", "Choose one of the offered overlaps: none, 1 hour, 24 hours or 7 days."),
    ],
)
def test_an_overlap_not_offered_is_refused_and_the_secret_kept(acme, webhook, overlap, error):
    old = webhook.secret
    response = signed_in(acme.user).post(secret_url(webhook), {"overlap": overlap})
    assert response.status_code == 400
    html = response.content.decode()
    assert f'<p class="whp-error" id="whp-overlap-error">{error}</p>' in html
    webhook.refresh_from_db()
    assert webhook.secret == old
    assert shown_secret(html) is None


def test_another_customers_webhook_is_not_found_and_its_secret_not_rotated(acme, webhook):
    globex = make_tenant("Globex")
    theirs = SubscriptionFactory(scope=globex.scope, all_events=True)
    old = theirs.secret
    client = signed_in(acme.user)
    assert client.get(secret_url(theirs)).status_code == 404
    assert client.post(secret_url(theirs), {"overlap": "0"}).status_code == 404
    assert client.get(f"{PORTAL}{uuid.uuid4()}/secret/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.secret == old


def test_a_customer_who_may_only_look_sees_no_rotation_and_cannot_rotate(acme, webhook):
    read_only(acme)
    old = webhook.secret
    client = signed_in(acme.user)
    page = client.get(secret_url(webhook))
    assert page.status_code == 200
    assert "cannot be shown again" in page.content.decode()
    assert "Rotate the secret" not in page.content.decode()
    assert client.post(secret_url(webhook), {"overlap": "0"}).status_code == 403
    webhook.refresh_from_db()
    assert webhook.secret == old


def test_rotation_without_the_csrf_token_is_refused(acme, webhook):
    old = webhook.secret
    client = signed_in(acme.user, enforce_csrf_checks=True)
    assert client.post(secret_url(webhook), {"overlap": "0"}).status_code == 403
    webhook.refresh_from_db()
    assert webhook.secret == old


def test_a_secret_not_shown_within_minutes_is_not_shown_later(acme, webhook, monkeypatch):
    client = signed_in(acme.user)
    client.post(secret_url(webhook), {"overlap": "0"})
    webhook.refresh_from_db()
    later = time.time() + 6 * 60
    monkeypatch.setattr(reveal, "time", types.SimpleNamespace(time=lambda: later))

    page = client.get(secret_url(webhook))
    assert webhook.secret not in page.content.decode()
    assert "can no longer be shown" in " ".join(messages_of(page))
    assert webhook.secret not in session_text(client)


def test_a_new_webhooks_secret_is_shown_once_on_the_secret_page(acme, webhook):
    """The add page (built apart) hands a new webhook's secret over with reveal_new_secret."""
    client = signed_in(acme.user)
    client.get(PORTAL)  # a session exists, as for anyone signed in
    request = RequestFactory().post(PORTAL)
    request.session = client.session
    request._messages = FallbackStorage(request)
    response = reveal_new_secret(request, webhook)
    request.session.save()
    assert response["Location"] == secret_url(webhook)
    assert webhook.secret not in session_text(client)

    assert shown_secret(client.get(secret_url(webhook)).content.decode()) == webhook.secret
    assert webhook.secret not in client.get(secret_url(webhook)).content.decode()


def test_the_webhooks_page_leads_to_its_secret_and_its_test_event(acme, webhook):
    page = signed_in(acme.user).get(f"{PORTAL}{webhook.pk}/").content.decode()
    assert f'href="{PORTAL}{webhook.pk}/secret/"' in page
    assert f'href="{PORTAL}{webhook.pk}/test/"' in page
