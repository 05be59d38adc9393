# ruff: noqa: F811 - the browser fixture is imported from the admin's browser tests
"""An editor publishes a page in Wagtail's admin (Chromium, Playwright, a live server) and
finds its delivery, to a real receiver on 127.0.0.1, under Settings › Webhooks."""

from tests.wagtail_site import skip_unless_wagtail_site

skip_unless_wagtail_site()

import pytest  # noqa: E402

from tests.admin.test_browser import browser, pytestmark, shot  # noqa: E402, F401
from webhooks.delivery import close_connections  # noqa: E402
from webhooks.models import Delivery, Subscription  # noqa: E402

pytestmark = [*pytestmark, pytest.mark.slow]


@pytest.fixture
def editor_page(browser, live_server, transactional_db, home, django_user_model):
    """Wagtail's Administrator ada (a superuser, not staff, as Wagtail makes them), signed in."""
    django_user_model.objects.create_user("ada", password="pw", is_superuser=True)
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1400, "height": 900})
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.goto("/admin/login/")
    page.fill("#id_username", "ada")
    page.fill("#id_password", "pw")
    page.click("button[type=submit]")
    page.wait_for_url("**/admin/")
    yield page
    context.close()
    close_connections()


def test_a_page_published_in_wagtail_is_delivered_and_shown_under_settings_webhooks(
    editor_page, home, receiver
):
    page = editor_page
    webhook = Subscription.objects.create(url=receiver.url, all_events=True)

    page.goto(f"/admin/pages/add/wagtail_site/newspage/{home.pk}/")
    page.fill("#id_title", "Spring fair")
    page.fill("#id_intro", "Saturday on the green")
    page.locator("footer [data-w-dropdown-target='toggle']").first.click()
    page.click("button[name='action-publish']")
    page.wait_for_selector("text=created and published")

    published = [r.json() for r in receiver.requests if r.json()["type"] == "news.published"]
    assert [event["data"]["title"] for event in published] == ["Spring fair"]

    # Settings › Webhooks, as an editor finds it in the sidebar.
    page.get_by_role("button", name="Settings").click()
    page.get_by_role("link", name="Webhooks").click()
    page.wait_for_selector(".whp")
    assert receiver.url in page.inner_text(".whp")
    shot(page, "wagtail-webhooks")
    page.click(".whp-nav >> text=Deliveries")
    page.wait_for_url("**/admin/webhooks/deliveries/")
    row = page.locator("tr", has_text="news.published")
    assert row.count() == 1
    delivery = Delivery.objects.get(subscription=webhook, event__type="news.published")
    assert delivery.status == Delivery.Status.SUCCEEDED
    assert "Delivered" in row.inner_text() or "Succeeded" in row.inner_text(), row.inner_text()
    shot(page, "wagtail-deliveries")
    row.get_by_role("link").first.click()
    page.wait_for_selector(".whp")
    assert "news.published" in page.inner_text(".whp")
    shot(page, "wagtail-delivery")
