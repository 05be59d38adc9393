# ruff: noqa: F811 - the browser fixture is imported from tests.admin.test_browser
"""The portal's webhook pages in Chromium: the event picker's search and "select all", the
new secret after adding, and pages a 375 px phone shows without scrolling sideways.
Screenshots go to ``test-artifacts/screenshots/`` (``portal-…``)."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.admin.test_browser import browser, pytestmark, shot  # noqa: F401  (fixtures)

PORTAL = "/settings/integrations/webhooks/"
LONG = "https://hooks.example.com/" + "platform-integration-receiver-" * 6


@pytest.fixture
def customer(transactional_db):
    from tests.api.conftest import make_tenant

    return make_tenant("Acme")


def portal_page(browser, live_server, user, width=1280):
    """A page signed in as ``user`` (a customer, not staff: the session cookie is set)."""
    client = Client()
    client.force_login(user)
    viewport = {"width": width, "height": 800}
    context = browser.new_context(base_url=live_server.url, viewport=viewport)
    context.set_default_timeout(15_000)
    context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    return context, context.new_page()


def test_select_all_after_a_search_ticks_only_the_types_the_search_shows(
    browser, live_server, customer, receiver
):
    from webhooks.models import Subscription

    context, page = portal_page(browser, live_server, customer.user)
    try:
        page.goto(PORTAL)
        page.click("#whp-add")
        page.fill("#id_url", receiver.url)
        page.fill("#id_description", "Tags")
        page.fill("[data-whp-search]", "tag")
        articles = page.locator("fieldset[data-whp-group]", has_text="Articles")
        assert articles.locator("li[data-whp-option]:visible").count() == 2
        articles.get_by_label("Select all Articles events").check()
        assert "2 of 8 selected" in articles.locator("legend").inner_text()
        assert page.inner_text("[data-whp-count]") == "2 selected"
        shot(page, "portal-01-event-picker")
        # Sent while the search still hides the other six: only the two are chosen.
        page.get_by_role("button", name="Add webhook").click()

        webhook = Subscription.objects.get(scope=customer.scope)
        assert set(webhook.event_types.values_list("name", flat=True)) == {
            "article.tagged",
            "article.untagged",
        }
        assert page.inner_text("#whp-secret-value") == webhook.secret
        page.reload()
        assert page.locator("#whp-secret-value").count() == 0
    finally:
        context.close()


def test_the_pages_fit_a_375_px_screen_without_scrolling_sideways(browser, live_server, customer):
    from tests.factories import SubscriptionFactory

    webhook = SubscriptionFactory(scope=customer.scope, url=LONG + "end", events=["item.created"])
    SubscriptionFactory(
        scope=customer.scope, url=LONG + "other", is_active=False, disabled_reason="x " * 100
    )
    context, page = portal_page(browser, live_server, customer.user, width=375)
    try:
        for name, path in [
            ("list", PORTAL),
            ("webhook", f"{PORTAL}{webhook.pk}/"),
            ("edit", f"{PORTAL}{webhook.pk}/edit/"),
        ]:
            page.goto(path)
            wide = page.evaluate("document.documentElement.scrollWidth")
            assert wide <= 375, (name, wide)
            shot(page, f"portal-375-{name}")
        page.goto(PORTAL)
        assert LONG + "end" in page.inner_text("#whp-webhooks")  # whole, wrapped
    finally:
        context.close()
