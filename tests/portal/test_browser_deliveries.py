# ruff: noqa: F811 - the browser fixtures are imported from the admin's and used as arguments
"""The deliveries log as a customer uses it, in Chromium against a live server: a resend
lands while the page waits, and the page follows without a reload; the log fits 375 px."""

from __future__ import annotations

from django.test import Client

import webhooks
from tests.admin.test_browser import browser, pytestmark, shot  # noqa: F401  (fixtures)
from tests.admin.test_browser_pages import queue  # noqa: F401  (fixture)
from tests.api.conftest import make_tenant
from tests.receiver import Answer
from webhooks.models import Delivery

LOG = "/settings/integrations/webhooks/deliveries/"


def signed_in_page(browser, live_server, user, width):
    """A page of a browser signed in as ``user`` (the host's own login, here its session)."""
    client = Client()
    client.force_login(user)
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": width, "height": 900}
    )
    context.set_default_timeout(15_000)
    context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    return context, context.new_page()


def test_a_resend_lands_while_the_delivery_page_waits(
    browser, live_server, transactional_db, receiver, queue, settings
):
    settings.WEBHOOKS_RETRY_SCHEDULE = []
    acme = make_tenant("Acme")
    acme.subscription(receiver)
    receiver.answer(Answer(500, body="down for maintenance"))
    webhooks.send_event("article.created", {"title": "Fractions"}, scope=acme.scope)
    queue()
    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.FAILED
    context, page = signed_in_page(browser, live_server, acme.user, 1280)

    page.goto(f"{LOG}{delivery.pk}/")
    assert "down for maintenance" in page.inner_text("#whp-attempts")
    page.click("#whp-resend")
    # Back at once: the work waits for a worker, the page says so.
    assert page.inner_text("#wh-progress-text") == "Resend: sending…"
    assert page.get_attribute("#wh-progress", "data-done") == "0"
    assert len(receiver.requests) == 1

    queue()  # a worker sends it; the page learns of it by itself
    url = page.url
    page.wait_for_selector('#wh-progress[data-done="1"]')
    assert page.inner_text("#wh-progress-text").startswith("Resend delivered: HTTP 200 in ")
    page.wait_for_selector('#wh-progress[data-refreshed="1"]')
    assert page.url == url
    assert "Attempt 2:" in page.inner_text("#whp-attempts")
    assert "Succeeded" in page.inner_text("#whp-delivery-summary")
    assert len(receiver.requests) == 2
    shot(page, "p-log-10-resend-delivered")

    # The log, on a phone: each delivery a card, nothing scrolls sideways.
    context.close()
    context, page = signed_in_page(browser, live_server, acme.user, 375)
    page.goto(LOG)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    assert receiver.url in page.inner_text("#whp-log")
    shot(page, "p-log-11-log-375px")
    page.keyboard.press("Tab")
    focused = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert focused != "none"
    context.close()
