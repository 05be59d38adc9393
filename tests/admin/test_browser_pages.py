# ruff: noqa: F811 - the browser fixtures are imported from test_browser and used as arguments
"""The webhook pages a customer would not want to leave, in Chromium against the bundled
demo receiver (``/demo-receiver/<org>/`` on the live server). Screenshots go to
``test-artifacts/screenshots/`` (``2x-…``)."""

from __future__ import annotations

import json
import socket
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.admin.test_browser import (  # noqa: F401  (fixtures)
    browser,
    logged_in,
    outcome,
    page,
    pytestmark,
    shot,
)
from webhooks.delivery import close_connections

ADMIN = "/admin/webhooks"


@pytest.fixture
def acme(transactional_db):
    from example_project.organisations.models import Organisation

    return Organisation.objects.create(name="Acme", slug="acme")


@pytest.fixture
def queue(monkeypatch):
    """Work handed to django-q2 waits here until the test plays the worker."""
    from webhooks import outbox, tasks

    waiting = []
    monkeypatch.setattr(outbox, "enqueue", lambda func, *args: waiting.append((func, args)) or True)

    def run_worker():
        while waiting:
            func, args = waiting.pop(0)
            getattr(tasks, func.rsplit(".", 1)[1])(*args)

    yield run_worker
    close_connections()  # no kept-alive connection left to the live server's threads


def assert_fits(page) -> None:
    """Neither the page nor the result table scrolls sideways: no column is cut."""
    page_width = page.evaluate("document.documentElement.scrollWidth")
    assert page_width <= page.viewport_size["width"], f"the page is {page_width} px wide"
    table = page.evaluate(
        "(() => { const r = document.querySelector('.results');"
        " return [r.scrollWidth, r.clientWidth]; })()"
    )
    assert table[0] <= table[1], f"the table needs {table[0]} px, has {table[1]}"


def inbox(live_server, acme) -> str:
    return f"{live_server.url}/demo-receiver/{acme.slug}/"


def test_a_test_event_and_a_resend_land_while_the_page_waits(page, live_server, acme, queue):
    from example_project.demo_receiver.models import ReceivedWebhook
    from tests.factories import SubscriptionFactory
    from webhooks.models import EventType

    sub = SubscriptionFactory(
        url=inbox(live_server, acme),
        scope=acme.scope,
        events=["article.created", "article.updated"],
        description="Acme inbox",
    )
    page.goto(f"{ADMIN}/subscription/{sub.pk}/change/")
    options = page.locator("#wh-example-type option").all_inner_texts()
    assert options == [
        "a test event (webhook.test)",
        "an example of article.created",
        "an example of article.updated",
    ]
    page.select_option("#wh-example-type", "article.created")
    page.click("#wh-send-test")

    # The page is back at once; the work waits for a worker.
    assert page.inner_text("#wh-progress-text") == "Example article.created event: sending…"
    assert page.get_attribute("#wh-progress", "data-done") == "0"
    assert not ReceivedWebhook.objects.exists()
    shot(page, "20-example-event-sending")

    queue()  # a worker sends it; the page learns of it by itself, without a reload
    url_before = page.url
    assert outcome(page).startswith("Example article.created event delivered: HTTP 204 in ")
    assert page.url == url_before
    # …and the log on the page follows, still without a reload.
    page.wait_for_selector('#wh-progress[data-refreshed="1"]')
    assert "Succeeded" in page.inner_text("#wh-recent tbody tr")
    assert "1 of 1 attempt succeeded" in page.inner_text("#wh-rate-day")
    shot(page, "21-example-event-delivered")
    received = ReceivedWebhook.objects.get(name=acme.slug)
    assert received.verified, received.error
    assert received.payload["data"] == EventType.objects.get(name="article.created").example_payload

    # The attempt: request and response side by side, the body pretty-printed.
    page.reload()
    page.click("#wh-recent a:text('article.created')")
    request = page.locator(".wh-request").first
    assert "webhook-signature" in request.inner_text()
    body = request.locator(".wh-request-body pre").inner_text()
    assert json.loads(body)["type"] == "article.created" and "\n  " in body
    response = page.locator(".wh-response").first
    assert "HTTP 204" in response.inner_text()
    boxes = [request.bounding_box(), response.bounding_box()]
    assert boxes[0]["x"] + boxes[0]["width"] <= boxes[1]["x"]  # side by side
    shot(page, "22-attempt-request-and-response")

    page.click("#wh-resend")
    assert page.inner_text("#wh-progress-text") == "Resend: sending…"
    queue()
    assert outcome(page).startswith("Resend delivered: HTTP 204 in ")
    page.wait_for_selector('#wh-progress[data-refreshed="1"]')
    assert page.locator("#attempts-group .inline-related").count() == 2
    assert ReceivedWebhook.objects.filter(name=acme.slug, verified=True).count() == 2
    shot(page, "23-resend-delivered")


def test_the_delivery_list_fits_1280_pixels_and_filters_by_response(
    browser, live_server, acme, transactional_db
):
    from django.contrib.auth.models import User

    from tests.admin.helpers import seed
    from tests.factories import SubscriptionFactory
    from webhooks.models import Delivery

    User.objects.create_superuser("root", "root@example.com", "pw")
    long_name = "Gradebook synchronisation for the whole district (production)"
    sub = SubscriptionFactory(
        url="https://hooks.example.com/a/very/long/path/for/webhooks/from/the/platform",
        scope=acme.scope,
        all_events=True,
        description=long_name,
    )
    seed(sub, 3, event_type="attemptOverride.created")
    seed(sub, 2, status=Delivery.Status.PENDING, status_code=503)
    seed(sub, 1, status=Delivery.Status.FAILED, status_code=None)
    context, page = logged_in(browser, live_server, "root")
    try:
        page.set_viewport_size({"width": 1280, "height": 900})
        page.goto(f"{ADMIN}/delivery/")
        assert_fits(page)
        names = page.locator(
            "#result_list .field-event_type .wh-cut, #result_list td.field-webhook a"
        ).evaluate_all("cells => cells.map(c => c.getBoundingClientRect().height)")
        assert len(names) == 12 and max(names) < 30, names  # names on one line each
        assert "Retrying (attempt 1 failed, next at" in page.inner_text("#result_list")
        shot(page, "24-deliveries-at-1280")
        assert page.is_visible("#changelist-filter a:text('5xx server error')")
        page.goto(f"{ADMIN}/delivery/?response=5xx")
        assert page.locator("#result_list tbody tr").count() == 2
        page.goto(f"{ADMIN}/delivery/?response=none")
        assert page.locator("#result_list tbody tr").count() == 1
    finally:
        context.close()


def test_the_webhook_list_shows_health_and_filters_failing_ones(
    browser, live_server, acme, transactional_db
):
    from django.contrib.auth.models import User

    from tests.admin.helpers import seed
    from tests.factories import SubscriptionFactory
    from webhooks.models import Delivery

    User.objects.create_superuser("root", "root@example.com", "pw")
    now = timezone.now()
    good = SubscriptionFactory(scope=acme.scope, all_events=True, description="Grades sync")
    seed(good, 4, created_at=now - timedelta(hours=1), attempts=True)
    bad = SubscriptionFactory(scope=acme.scope, all_events=True, description="CRM bridge")
    seed(bad, 1, created_at=now - timedelta(hours=5), attempts=True)
    seed(bad, 3, status=Delivery.Status.FAILED, status_code=502, created_at=now, attempts=True)
    bad.consecutive_failures, bad.failing_since = 12, now - timedelta(hours=4)
    bad.save()
    SubscriptionFactory(
        scope=acme.scope,
        all_events=True,
        description="Old export",
        is_active=False,
        disabled_reason="The receiver answered 410 Gone.",
    )
    context, page = logged_in(browser, live_server, "root")
    try:
        page.set_viewport_size({"width": 1280, "height": 900})
        page.goto(f"{ADMIN}/subscription/")
        text = page.inner_text("#result_list")
        assert "Working" in text and "Failing" in text and "Disabled" in text
        assert "100%" in text and "25%" in text and "failed, HTTP 502" in text
        assert_fits(page)
        shot(page, "25-webhook-list")
        assert page.is_visible("#changelist-filter a:text('Failing')")
        page.goto(f"{ADMIN}/subscription/?state=failing")
        rows = page.locator("#result_list tbody tr")
        assert rows.count() == 1 and "CRM bridge" in rows.inner_text()
        page.click("#result_list .field-webhook a")
        assert "Failing" in page.inner_text("#wh-state")
        assert "0 of 0" not in page.inner_text("#wh-health")
        shot(page, "26-failing-webhook-health")
    finally:
        context.close()


def test_the_event_picker_fits_one_screen_searches_and_counts(page, live_server, acme):
    from webhooks.models import Subscription

    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{ADMIN}/subscription/add/")
    picker = page.locator("[data-wh-events]")
    assert picker.bounding_box()["height"] < 900, "the picker takes more than a screen"
    box, form = picker.bounding_box(), page.locator("#content-main").bounding_box()
    assert box["x"] + box["width"] <= form["x"] + form["width"], "the picker is cut"
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    assert "webhook.test" not in picker.inner_text()
    assert page.inner_text("[data-wh-count]") == "0 selected"
    shot(page, "27-event-picker-collapsed")

    page.fill("[data-wh-search]", "shared")
    visible = page.locator("[data-wh-option]:visible code").all_inner_texts()
    assert visible and all("shared" in name for name in visible)
    page.check('label:has(code:text-is("article.shared")) input')
    assert page.inner_text("[data-wh-count]") == "1 selected"
    shot(page, "28-event-picker-search")
    page.fill("[data-wh-search]", "")
    group = page.locator("[data-wh-group]", has_text="Articles")
    group.evaluate("details => { details.open = true; }")
    group.locator("[data-wh-select-all]").check()
    articles = group.locator("[data-wh-event]").count()
    assert page.inner_text("[data-wh-count]") == f"{articles} selected"
    assert group.locator("[data-wh-group-count]").inner_text() == f"{articles} of {articles}"
    # Notices about the organisation's other webhooks are offered apart.
    page.check('label:has(code:text-is("webhook.disabled")) input')
    assert page.inner_text("[data-wh-count]") == f"{articles + 1} selected"
    shot(page, "29-event-picker-selected")

    # The host has organisations: a webhook must belong to one.
    page.fill("#id_url", inbox(live_server, acme))
    page.click("input[name=_save]")
    assert "Choose the organisation" in page.inner_text(".field-scope .errorlist")
    shot(page, "30-organisation-required")
    page.select_option("#id_scope", label="Acme")
    page.click("input[name=_save]")
    page.wait_for_selector("#wh-secret")
    sub = Subscription.objects.get()
    assert sub.scope == acme.scope and sub.event_types.count() == articles + 1


def test_a_disabled_webhook_is_announced_to_the_tenants_demo_inbox(
    page, live_server, acme, settings
):
    import webhooks
    from example_project.demo_receiver.models import ReceivedWebhook
    from tests.factories import SubscriptionFactory

    settings.WEBHOOKS_RETRY_SCHEDULE = []
    settings.WEBHOOKS_DISABLE_AFTER = 0
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/hook"
    broken = SubscriptionFactory(
        url=dead, scope=acme.scope, events=["article.created"], description="Broken hook"
    )
    SubscriptionFactory(
        url=inbox(live_server, acme),
        scope=acme.scope,
        events=["webhook.disabled"],
        description="Ops inbox",
    )
    try:
        webhooks.send_event("article.created", {"id": 1}, scope=acme.scope)  # autocommit
    finally:
        close_connections()
    received = ReceivedWebhook.objects.get(name=acme.slug)
    assert received.verified and received.event_type == "webhook.disabled"
    page.goto(f"/demo-receiver/{acme.slug}/")
    assert "webhook.disabled" in page.inner_text("table")
    shot(page, "31-demo-inbox-webhook-disabled")
    page.goto(f"{ADMIN}/subscription/{broken.pk}/change/")
    assert "Disabled" in page.inner_text("#wh-state")
    assert "Failed" in page.inner_text("#wh-recent")
    shot(page, "32-disabled-webhook")
    page.goto("/admin/")
    heading = page.locator("#content-main").text_content()  # as written, before CSS capitals
    assert "Demo receiver" in heading and "demo_receiver" not in heading.lower().replace(" ", "")
