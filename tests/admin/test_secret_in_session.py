"""A new signing secret crosses to the page that shows it without ever resting in clear in
the session table (sessions are signed, not encrypted), and leaves it once shown."""

import json
import time
import types

import pytest
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session

from tests.admin.helpers import ADD_URL, change_url, messages_of
from tests.admin.test_webhook_form import form_data
from tests.factories import SubscriptionFactory
from webhooks.admin import reveal
from webhooks.models import Subscription

pytestmark = pytest.mark.django_db

REVEAL_KEY = "webhooks:reveal-secret:{}"


def stored_session(client) -> tuple[str, dict]:
    """The client's session as the database holds it: the raw row, and what it decodes to."""
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    raw = Session.objects.get(session_key=key).session_data
    return raw, SessionStore(session_key=key).load()


def assert_not_in_session(client, secret: str) -> dict:
    raw, data = stored_session(client)
    assert secret not in raw
    assert secret not in json.dumps(data)
    return data


def test_a_new_webhooks_secret_is_kept_encrypted_until_its_page_shows_it(admin_client):
    admin_client.post(ADD_URL, form_data())
    sub = Subscription.objects.get()
    data = assert_not_in_session(admin_client, sub.secret)
    assert REVEAL_KEY.format(sub.pk) in data  # a token for the page, not the secret

    page = admin_client.get(change_url(sub)).content.decode()
    assert sub.secret in page
    data = assert_not_in_session(admin_client, sub.secret)
    assert REVEAL_KEY.format(sub.pk) not in data


def test_a_webhook_added_in_a_popup_shows_its_secret_there_and_never_stores_it(admin_client):
    admin_client.get(ADD_URL)  # a session exists, as it does for anyone logged in
    response = admin_client.post(ADD_URL + "?_popup=1", form_data(_popup="1"))
    sub = Subscription.objects.get()
    html = response.content.decode()
    assert response.status_code == 200
    assert "copy it now" in html and sub.secret in html
    # The button that closes the popup hands the new webhook to the form that opened it.
    assert 'id="wh-popup-done"' in html and str(sub.pk) in html
    data = assert_not_in_session(admin_client, sub.secret)
    assert not [key for key in data if key.startswith("webhooks:reveal-secret")]
    # Nor is it shown a second time on the webhook's page.
    assert sub.secret not in admin_client.get(change_url(sub)).content.decode()


def test_a_rotated_secret_is_kept_encrypted_and_gone_once_shown(admin_client):
    sub = SubscriptionFactory(all_events=True)
    admin_client.post(f"{change_url(sub)[:-7]}rotate-secret/")
    sub.refresh_from_db()
    data = assert_not_in_session(admin_client, sub.secret)
    assert REVEAL_KEY.format(sub.pk) in data

    assert sub.secret in admin_client.get(change_url(sub)).content.decode()
    data = assert_not_in_session(admin_client, sub.secret)
    assert REVEAL_KEY.format(sub.pk) not in data


def test_a_rotated_secret_not_shown_within_minutes_is_not_shown_later(admin_client, monkeypatch):
    sub = SubscriptionFactory(all_events=True)
    admin_client.post(f"{change_url(sub)[:-7]}rotate-secret/")
    sub.refresh_from_db()
    later = time.time() + 6 * 60
    monkeypatch.setattr(reveal, "time", types.SimpleNamespace(time=lambda: later))

    response = admin_client.get(change_url(sub))
    assert sub.secret not in response.content.decode()
    assert "can no longer be shown" in " ".join(messages_of(response))
    assert REVEAL_KEY.format(sub.pk) not in stored_session(admin_client)[1]


def test_a_webhook_changed_in_a_popup_closes_it_at_once(admin_client):
    sub = SubscriptionFactory(all_events=True, url="http://127.0.0.1:9/hook")
    response = admin_client.post(
        change_url(sub) + "?_popup=1", form_data(all_events="on", _popup="1")
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "admin/js/popup_response.js" in html and str(sub.pk) in html
    assert sub.secret not in html and "wh-popup-done" not in html
