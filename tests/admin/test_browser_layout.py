# ruff: noqa: F811 - the browser fixtures are imported from test_browser and used as arguments
"""What only a browser shows (Chromium, 1400 px, as the issue was found): nothing clipped
or overlapping on a webhook's page, the copy button, "select all" in a searched group, and
URLs in the lists told apart. Each measures boxes rather than trusting the markup."""

from __future__ import annotations

import pytest

from tests.admin.test_browser import (  # noqa: F401  (fixtures)
    browser,
    logged_in,
    page,
    pytestmark,
    shot,
)

ADMIN = "/admin/webhooks"


@pytest.fixture
def webhook(transactional_db):
    from example_project.organisations.models import Organisation
    from tests.factories import SubscriptionFactory

    acme = Organisation.objects.create(name="Acme", slug="acme")
    return SubscriptionFactory(
        url="http://127.0.0.1:8603/500", scope=acme.scope, all_events=True, description=""
    )


def box(page, selector: str) -> dict:
    return page.locator(selector).first.bounding_box()


def overlap(a: dict, b: dict) -> bool:
    return not (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )


def test_history_does_not_overlap_the_webhook_actions(page, webhook):
    # The admin pulls its object tools 48 px up, over whatever the page put above the
    # form: here the webhook's buttons, at widths where they reach the right edge.
    controls = "#wh-health button, #wh-health input, #wh-health select, #wh-health label"
    covered = []
    for width in range(800, 1700, 20):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(f"{ADMIN}/subscription/{webhook.pk}/change/")
        history = box(page, ".object-tools a.historylink")
        for index, control in enumerate(page.locator(controls).all()):
            if control.is_visible() and overlap(history, control.bounding_box()):
                covered.append((width, index, control.evaluate("e => e.id || e.textContent")))
    assert covered == [], f"HISTORY covers (width, control): {covered}"
    shot(page, "layout-webhook-page")


def test_the_secret_is_shown_unclipped_and_copied_with_one_click(page, webhook):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto(f"{ADMIN}/subscription/{webhook.pk}/change/")
    page.click("#wh-rotate-secret")  # the confirm dialog is accepted
    page.wait_for_selector("#wh-secret")
    heading = page.locator("#wh-secret > :first-child")  # "Signing secret — copy it now…"
    sizes = heading.evaluate("h => [h.scrollHeight, h.clientHeight]")
    assert sizes[0] <= sizes[1], f"the heading needs {sizes[0]} px, shows {sizes[1]}"
    # The secret's own box (its background) does not cover the heading's descenders.
    above, below = heading.bounding_box(), box(page, "#wh-secret-value")
    assert above["y"] + above["height"] <= below["y"], (above, below)
    shot(page, "layout-secret")

    secret = page.inner_text("#wh-secret-value").strip()
    assert secret.startswith("whsec_")
    page.click("[data-wh-copy]")
    page.wait_for_function("document.getElementById('wh-copy-status').textContent === 'Copied'")
    assert page.evaluate("navigator.clipboard.readText()") == secret
    assert page.get_attribute("#wh-copy-status", "aria-live") == "polite"
    shot(page, "layout-secret-copied")


def test_select_all_in_a_searched_group_ticks_only_the_types_shown(page, webhook):
    from webhooks.models import EventType

    page.goto(f"{ADMIN}/subscription/add/")
    page.fill("[data-wh-search]", "article.created")
    group = page.locator("[data-wh-group]", has_text="Articles")
    group.locator("[data-wh-select-all]").check()
    ticked = group.locator("[data-wh-event]:checked").evaluate_all(
        "boxes => boxes.map(b => b.closest('li').querySelector('code').textContent)"
    )
    assert ticked == ["article.created"]
    assert page.inner_text("[data-wh-count]") == "1 selected"
    # Saved, it is that one type, not the whole category.
    page.fill("#id_url", "http://127.0.0.1:8699/refused")
    page.select_option("#id_scope", label="Acme")
    page.click("input[name=_save]")
    page.wait_for_selector("#wh-secret")
    from webhooks.models import Subscription

    saved = Subscription.objects.get(url="http://127.0.0.1:8699/refused")
    assert list(saved.event_types.values_list("name", flat=True)) == ["article.created"]
    assert EventType.objects.filter(category="Articles").count() > 1


@pytest.mark.parametrize("where", ["subscription", "delivery"])
def test_the_lists_tell_two_urls_apart_at_1400_pixels(page, webhook, where):
    from tests.admin.helpers import seed
    from tests.factories import SubscriptionFactory

    long = "http://receiver.platform-customer.example.com:8699/webhooks/acme/incoming/refused"
    other = SubscriptionFactory(url=long, scope=webhook.scope, all_events=True, description="")
    seed(webhook, 1)
    seed(other, 1)
    page.goto(f"{ADMIN}/{where}/")
    for part in [".wh-url-port", ".wh-url-tail"]:
        cut = page.locator(f"#result_list {part}").evaluate_all(
            "els => els.filter(e => e.scrollWidth > e.clientWidth).map(e => e.textContent)"
        )
        assert cut == [], f"{part} cut: {cut}"
    # The host shows enough to recognise (its start), even where it is cut.
    widths = page.locator("#result_list .wh-url-host").evaluate_all(
        "els => els.map(e => e.clientWidth)"
    )
    assert min(widths) >= 40, widths
    seen = page.locator("#result_list .wh-url-shown").evaluate_all(
        "els => els.map(e => [e.querySelector('.wh-url-port').textContent,"
        " e.querySelector('.wh-url-tail').textContent])"
    )
    assert [":8603", "/500"] in seen and [":8699", "/refused"] in seen, seen
    table = page.evaluate(
        "(() => { const r = document.querySelector('.results');"
        " return [r.scrollWidth, r.clientWidth]; })()"
    )
    assert table[0] <= table[1], f"the table needs {table[0]} px, has {table[1]}"
    shot(page, f"layout-urls-{where}")
