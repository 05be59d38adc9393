"""The secret, test-event and catalogue pages as a customer uses them: Debian's Chromium at
375 px wide against a live server and a real receiver on 127.0.0.1."""

from __future__ import annotations

import json

import pytest
from django.conf import settings
from django.test import Client

from tests.admin.test_browser import CHROMIUM, browser  # noqa: F401 (the fixture)
from tests.api.conftest import make_tenant
from tests.portal.helpers import PORTAL
from webhooks import signing

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"needs Debian's Chromium at {CHROMIUM}"),
    pytest.mark.browser,
]


@pytest.fixture
def customer(browser, live_server, transactional_db):  # noqa: F811
    """A signed-in customer of the example platform in a phone-sized browser."""
    acme = make_tenant("Acme")
    client = Client()
    client.force_login(acme.user)
    context = browser.new_context(base_url=live_server.url, viewport={"width": 375, "height": 800})
    context.set_default_timeout(15_000)
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": live_server.url}]
    )
    page = context.new_page()
    yield acme, page
    context.close()


def no_sideways_scroll(page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= 375


def test_rotate_copy_the_secret_and_send_an_edited_test_event(customer, receiver):
    acme, page = customer
    webhook = acme.subscription(receiver, ["article.created", "article.updated"])

    page.goto(f"{PORTAL}{webhook.pk}/secret/")
    assert "cannot be shown again" in page.inner_text("main")
    page.check("text=1 hour")
    page.click("button:has-text('Rotate the secret')")
    page.wait_for_selector("#whp-secret-value")
    no_sideways_scroll(page)
    secret = page.input_value("#whp-secret-value")
    page.click("[data-whp-copy]")
    page.wait_for_function(
        "document.querySelector('[data-whp-copy-status]').textContent === 'Copied'"
    )
    assert page.evaluate("navigator.clipboard.readText()") == secret
    assert "The previous secret still signs until" in page.inner_text("main")
    page.reload()
    assert page.query_selector("#whp-secret-value") is None

    page.goto(f"{PORTAL}{webhook.pk}/test/")
    no_sideways_scroll(page)
    assert not page.is_visible("[data-whp-load-example]")  # the script swaps examples
    page.select_option("#id_event_type", "article.updated")
    assert '"id"' in page.input_value("#id_payload")
    page.fill("#id_payload", json.dumps({"id": 99, "title": "From the phone"}))
    page.click("text=Send test event")
    page.wait_for_selector(".whp-outcome--done")
    assert "Delivered: HTTP 200" in page.inner_text(".whp-outcome")
    assert receiver.requests[-1].json()["data"] == {"id": 99, "title": "From the phone"}
    request = receiver.requests[-1]
    signing.verify(secret, request.headers, request.body)


def test_the_catalogue_filters_as_one_types(customer):
    acme, page = customer
    page.goto(f"{PORTAL}events/")
    no_sideways_scroll(page)
    page.fill("#whp-catalogue-q", "user regist")
    page.wait_for_function(
        "document.querySelector('[data-whp-filter-count]').textContent.includes('match')"
    )
    shown = page.eval_on_selector_all(
        "[data-whp-type]:not([hidden])", "items => items.map(item => item.id)"
    )
    assert shown == ["event-user.registered", "event-user.registeredForExam"]
    categories = page.eval_on_selector_all(
        "[data-whp-category]:not([hidden]) h2", "headings => headings.map(h => h.textContent)"
    )
    assert categories == ["Users"]
    assert page.inner_text("[data-whp-filter-count]").startswith("2 of ")
