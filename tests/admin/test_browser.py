"""The admin as a person uses it: Debian's Chromium, headless, driven by Playwright, against
a live server. A screenshot of each main page goes to ``test-artifacts/screenshots/``."""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path

import pytest

from tests.receiver import Answer
from webhooks import signing

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"

pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"browser tests need Debian's Chromium at {CHROMIUM} (apt-get install chromium)",
    ),
    pytest.mark.browser,
]

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    # Playwright's sync API keeps an event loop on this thread; the test's own ORM calls
    # are still plain synchronous code.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


def logged_in(browser, live_server, username):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1440, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # "Rotate the secret?" confirm
    page.goto("/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")
    return context, page


@pytest.fixture
def page(browser, live_server, transactional_db):
    from django.contrib.auth.models import User

    User.objects.create_superuser("root", "root@example.com", "pw")
    context, page = logged_in(browser, live_server, "root")
    yield page
    context.close()


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def tick_event(page, name: str) -> None:
    """Find a type with the picker's search box (its category opens), tick it, clear."""
    page.fill("[data-wh-search]", name)
    page.check(f'label:has(code:text-is("{name}")) input[type=checkbox]')
    page.fill("[data-wh-search]", "")


def outcome(page) -> str:
    """The progress box's text once the work it reports on has landed."""
    page.wait_for_selector('#wh-progress[data-done="1"]')
    return page.inner_text("#wh-progress-text")


def messages(page) -> str:
    return page.inner_text("ul.messagelist")


def test_configure_a_webhook_and_follow_its_deliveries(page, receiver):
    import webhooks
    from example_project.organisations.models import Organisation
    from webhooks.models import Delivery

    acme = Organisation.objects.create(name="Acme", slug="acme")

    page.goto("/admin/")
    assert page.is_visible("text=Integrations")
    shot(page, "01-admin-index")
    page.click("text=Integrations")
    page.click(".model-subscription a.addlink, a[href$='/webhooks/subscription/add/']")

    # A private address is refused, in plain words, on the URL field.
    page.fill("#id_description", "Grades sync")
    page.fill("#id_url", "http://10.0.0.5/hook")
    tick_event(page, "article.created")
    tick_event(page, "article.shared")
    page.click("input[name=_save]")
    error = page.inner_text(".field-url .errorlist")
    assert "10.0.0.5" in error and "private network address" in error
    shot(page, "02-add-webhook-refused-url")

    # The real receiver, two event types, basic auth, the organisation.
    page.fill("#id_url", receiver.url)
    assert page.is_checked('label:has(code:text-is("article.shared")) input')
    page.fill("#id_basic_auth_username", "hooks")
    page.fill("#id_basic_auth_password", "s3cret")
    page.select_option("#id_scope", label="Acme")
    page.click("input[name=_save]")

    # The secret is shown once, on the new webhook's page.
    secret = page.inner_text("#wh-secret-value").strip()
    assert secret.startswith("whsec_")
    shot(page, "03-webhook-created-secret-shown")
    webhook_url = page.url
    page.reload()
    assert not page.is_visible("#wh-secret")

    # An event of the platform is recorded, fanned out and delivered (sync queue, on commit).
    webhooks.send_event("article.shared", {"id": 7, "title": "Fractions"}, scope=acme.scope)
    assert receiver.types() == ["article.shared"]
    request = receiver.requests[0]
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"hooks:s3cret").decode()
    signing.verify(secret, request.headers, request.body)  # the secret shown is the one in use

    page.click("text=Deliveries")
    row = page.locator("#result_list tbody tr").first
    assert "article.shared" in row.inner_text() and "Succeeded" in row.inner_text()
    shot(page, "04-deliveries")
    row.locator("a", has_text="article.shared").click()
    attempt = page.inner_text(".inline-related")
    assert "HTTP 200" in attempt and "webhook-signature" in attempt
    assert "Fractions" in page.inner_text(".field-payload")
    shot(page, "05-delivery-with-attempt")

    # Resend: a manual attempt with the same webhook-id.
    receiver.answer(Answer(503, body="down for maintenance"))
    # Queued by the request, sent after it commits: the page it leads to shows the attempt.
    page.click("#wh-resend")
    assert "Resend failed: HTTP 503" in outcome(page)
    page.click("#wh-resend")
    assert "Resend delivered: HTTP 200" in outcome(page)
    assert len(receiver.requests) == 3
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1
    assert page.locator(".inline-related").count() == 3
    assert "down for maintenance" in page.inner_text("#attempts-group")

    # The webhook's page: health, a test event, a new secret.
    page.goto(webhook_url)
    page.click("#wh-send-test")
    assert re.search(r"Test event delivered: HTTP 200 in \d+ ms", outcome(page))
    assert receiver.types()[-1] == "webhook.test"
    page.reload()
    # The first delivery, the failed and the delivered resend, the test event.
    assert "3 of 4 attempts succeeded" in page.inner_text("#wh-rate-day")
    assert page.locator("#wh-chart rect.s").count() >= 1
    assert page.locator("#wh-recent tbody tr").count() == 2
    shot(page, "06-webhook-health-after-test")

    page.click("#wh-rotate-secret")
    new_secret = page.inner_text("#wh-secret-value").strip()
    assert new_secret.startswith("whsec_") and new_secret != secret
    assert "old one keeps signing" in messages(page)
    page.click("#wh-send-test")
    outcome(page)
    signatures = receiver.requests[-1].headers["webhook-signature"].split(" ")
    assert len(signatures) == 2  # new and old secret, during the overlap
    signing.verify(new_secret, receiver.requests[-1].headers, receiver.requests[-1].body)
    shot(page, "07-webhook-secret-rotated")

    page.goto("/admin/webhooks/eventtype/")
    assert page.is_visible("text=article.shared")
    shot(page, "08-event-types")
    assert Delivery.objects.count() == 3


def test_select_all_of_a_category_subscribes_to_each_of_its_types(page, receiver):
    from example_project.organisations.models import Organisation
    from webhooks.models import EventType, Subscription

    Organisation.objects.create(name="Acme", slug="acme")
    page.goto("/admin/webhooks/subscription/add/")
    page.fill("#id_url", receiver.url)
    page.select_option("#id_scope", label="Acme")
    group = page.locator("[data-wh-group]", has_text="Articles")
    group.locator("summary").click()
    group.locator("[data-wh-select-all]").check()
    boxes = group.locator("[data-wh-event]")
    assert all(boxes.nth(i).is_checked() for i in range(boxes.count()))
    page.click("input[name=_save]")
    page.wait_for_selector("#wh-secret")
    sub = Subscription.objects.get()
    articles = set(EventType.objects.filter(category="Articles").values_list("name", flat=True))
    assert set(sub.event_types.values_list("name", flat=True)) == articles

    # Unticking one type unticks "select all", so saving drops just that one.
    group = page.locator("[data-wh-group]", has_text="Articles")
    assert group.locator("[data-wh-select-all]").is_checked()
    tick = 'label:has(code:text-is("article.deleted")) input[type=checkbox]'
    page.fill("[data-wh-search]", "article.deleted")
    page.uncheck(tick)
    assert not group.locator("[data-wh-select-all]").is_checked()
    page.click("input[name=_save]")
    assert "was changed successfully" in messages(page)
    assert set(sub.event_types.values_list("name", flat=True)) == articles - {"article.deleted"}


def test_staff_of_an_organisation_see_only_its_webhooks(browser, live_server, transactional_db):
    from example_project.organisations.models import Organisation
    from tests.admin.conftest import ALL_PERMS, staff_of
    from tests.factories import SubscriptionFactory

    acme = Organisation.objects.create(name="Acme", slug="acme")
    globex = Organisation.objects.create(name="Globex", slug="globex")
    staff_of(acme, "alice", ALL_PERMS)
    SubscriptionFactory(scope=acme.scope, all_events=True, description="Acme grades")
    theirs = SubscriptionFactory(scope=globex.scope, all_events=True, description="Globex CRM")

    context, page = logged_in(browser, live_server, "alice")
    try:
        page.goto("/admin/webhooks/subscription/")
        listing = page.inner_text("#result_list")
        assert "Acme grades" in listing and "Globex CRM" not in listing
        shot(page, "09-tenant-staff-webhooks")
        page.goto(f"/admin/webhooks/subscription/{theirs.pk}/change/")
        assert page.url.endswith("/admin/")  # sent away, nothing shown
        assert "doesn’t exist" in messages(page) and "Globex CRM" not in page.content()
    finally:
        context.close()
