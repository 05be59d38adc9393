# ruff: noqa: F811 - the browser fixture is imported from the admin's browser tests
"""The customer portal as a customer uses it: Chromium (Playwright) against a live server,
signed in as a member of a Pro organisation.

Every portal page is found by crawling from the portal's root (tests/portal/pages.py), so
pages merged later are checked without being listed here: each answers 200, axe-core finds
no serious or critical violation, and at 375 px wide the page does not scroll sideways.
Screenshots of each at 375 and 1400 px go to ``test-artifacts/screenshots/portal-*.png``.

Needs /usr/bin/chromium and axe-core (``npm ci --prefix tests/browser``); skips, saying
which, without them.
"""

from __future__ import annotations

import re
import time

import pytest
from django.conf import settings
from django.test import Client
from django.urls import NoReverseMatch, reverse

from tests.admin.test_browser import SCREENSHOTS, browser, pytestmark  # noqa: F401
from tests.api.conftest import make_tenant
from tests.browser.axe import axe_violations, describe, require_axe
from tests.portal.pages import PORTAL, crawl, route, route_urls, seed_portal
from webhooks.delivery import close_connections

PHONE, DESKTOP = 375, 1400
#: What another customer has: no portal page may show it.
THEIRS = "https://globex.example/their-private-hook"


@pytest.fixture
def acme(transactional_db):
    from tests.factories import SubscriptionFactory

    globex = make_tenant("Globex")
    SubscriptionFactory(scope=globex.scope, url=THEIRS, description="Globex CRM")
    return make_tenant("Acme")


@pytest.fixture
def portal(browser, live_server, acme):
    """A Chromium tab signed in as Acme's webhook manager (the session of force_login)."""
    client = Client()
    client.force_login(acme.user)
    context = browser.new_context(
        base_url=live_server.url,
        viewport={"width": DESKTOP, "height": 900},
        bypass_csp=True,  # axe is injected as a script; a strict CSP would refuse it
    )
    context.set_default_timeout(15_000)
    context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    yield page
    context.close()
    close_connections()  # no kept-alive connection left to the live server's threads


def inbox(live_server, acme) -> str:
    """The bundled demo receiver's inbox for Acme on the live server."""
    return f"{live_server.url}/demo-receiver/{acme.organisation.slug}/"


def stored_state() -> dict:
    """What a GET must never change: webhooks, deliveries, attempts, events."""
    from webhooks.models import Delivery, DeliveryAttempt, Event, Subscription

    return {
        "webhooks": sorted(
            Subscription.objects.values_list("pk", "is_active", "url", "updated_at")
        ),
        "deliveries": sorted(
            Delivery.objects.values_list("pk", "status", "attempt_count", "resend_requested_at")
        ),
        "attempts": DeliveryAttempt.objects.count(),
        "events": Event.objects.count(),
    }


def shot(page, name: str, width: int) -> None:
    from playwright.sync_api import Error

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = str(SCREENSHOTS / f"portal-{name}-{width}.png")
    try:
        page.screenshot(path=path, full_page=True)
    except Error:  # a page taller than Chromium captures in one go: its first screen
        page.screenshot(path=path)


def test_every_portal_page_answers_passes_axe_and_fits_a_phone(portal, live_server, acme):
    require_axe()
    objects = seed_portal(acme.scope, receiver_url=inbox(live_server, acme))
    before = stored_state()
    problems: dict[str, list[str]] = {}
    not_pages: list[str] = []

    def fetch(url):
        from playwright.sync_api import Error

        try:
            response = portal.goto(url)
        except Error:  # Chromium shows no page for an empty error answer (a 405): ask again
            answer = portal.request.get(url, max_redirects=0)
            return answer.status, answer.headers.get("content-type", "text/html"), ""
        content_type = response.headers.get("content-type", "") if response else ""
        html = portal.content() if "html" in content_type else ""
        return (response.status if response else 0), content_type, html

    def check(visited):
        found = problems.setdefault(f"{visited.name} ({visited.url}, {visited.how})", [])
        landed = portal.url.split("?")[0]
        if visited.how.startswith("route") and (visited.status != 200 or PORTAL not in landed):
            # A route filled in by guess answering 405 (POST only), 404 or a redirect: not a
            # page to check. Pages reached by a link must answer.
            not_pages.append(f"{visited.url}: HTTP {visited.status}, at {portal.url}")
            problems.pop(f"{visited.name} ({visited.url}, {visited.how})")
            return
        if visited.status != 200:
            found.append(f"HTTP {visited.status}")
            return
        if PORTAL not in landed:
            found.append(f"sent away to {portal.url}")
        if THEIRS in visited.html or "Globex" in visited.html:
            found.append("shows another customer's webhook")
        found.extend(page_problems(portal, visited.name))

    visited = crawl(
        fetch,
        live_server.url + PORTAL,
        objects["hints"],
        extra=[(live_server.url + path, how) for path, how in route_urls(objects)],
        on_page=check,
    )

    pages = [v for v in visited if not v.how.startswith("route") or v.status == 200]
    report = "\n".join(f"  {v.name}: {v.url} ({v.how})" for v in pages)
    print(f"checked {len(pages)} portal pages:\n{report}\nnot pages: {not_pages}")
    assert pages and pages[0].url == live_server.url + PORTAL
    failing = {page: found for page, found in problems.items() if found}
    if stored_state() != before:
        failing["(all pages)"] = ["a GET of a portal page changed stored data"]
    assert not failing, "\n".join(f"{page}:\n  " + "\n  ".join(f) for page, f in failing.items())


def page_problems(page, name: str | None = None) -> list[str]:
    """What is wrong with the page loaded in ``page``: axe's serious and critical violations
    (at 1400 px), and a sideways scroll at 375 px. Screenshots at both widths if ``name``."""
    problems = []
    violations = axe_violations(page)
    if violations:
        problems.append("axe (serious/critical):\n" + describe(violations))
    if name:
        shot(page, name, DESKTOP)
    page.set_viewport_size({"width": PHONE, "height": 800})
    try:
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > PHONE:
            wide = page.evaluate(WIDEST_ELEMENTS, PHONE)
            problems.append(f"{width} px wide at {PHONE} px (scrolls sideways): {wide}")
        if name:
            shot(page, name, PHONE)
    finally:
        page.set_viewport_size({"width": DESKTOP, "height": 900})
    return problems


#: The innermost elements sticking out past the viewport or spilling their content over
#: its edge, for the failure message.
WIDEST_ELEMENTS = """(width) => [...document.querySelectorAll('body *')]
    .filter(e => e.getBoundingClientRect().right > width + 1
        || (e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflowX === 'visible'))
    .filter((e, i, all) => !all.some(other => other !== e && e.contains(other)))
    .slice(0, 5)
    .map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
        + (e.className && typeof e.className === 'string' ? '.' + e.className.split(' ')[0] : '')
        + ' (' + Math.max(e.getBoundingClientRect().right, e.scrollWidth) + ' px)')"""


# The checks themselves, on pages made to fail them -----------------------------------------

BROKEN = """<!DOCTYPE html><html lang="en"><head><title>Broken</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head><body><main>
<h1>Webhooks</h1>
<form><input type="url" name="url"></form>
<p style="color:#bbb;background:#fff">Low contrast text</p>
<pre style="white-space:pre">https://hooks.example.com/a-very-long-url-that-does-not-wrap-on-a-phone/xxxxxxxxxxxxxxxxxx</pre>
</main></body></html>"""
TIDY = """<!DOCTYPE html><html lang="en"><head><title>Tidy</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head><body><main>
<h1>Webhooks</h1>
<form><label for="u">URL</label> <input id="u" type="url" name="url"></form>
<p>Readable text</p>
<pre style="white-space:pre-wrap;overflow-wrap:anywhere">https://hooks.example.com/a-very-long-url-that-does-not-wrap-on-a-phone/xxxxxxxxxxxxxxxxxx</pre>
</main></body></html>"""


def test_the_page_checks_catch_an_unlabelled_field_low_contrast_and_a_sideways_scroll(browser):
    require_axe()
    context = browser.new_context(viewport={"width": DESKTOP, "height": 900})
    try:
        page = context.new_page()
        page.set_content(BROKEN)
        problems = "\n".join(page_problems(page))
        assert "label" in problems and "color-contrast" in problems, problems
        assert f"at {PHONE} px (scrolls sideways)" in problems and "pre" in problems, problems
        page.set_content(TIDY)
        assert page_problems(page) == []
    finally:
        context.close()


# Keyboard only -------------------------------------------------------------------------------

#: JavaScript predicates on ``document.activeElement`` (``e``). An event type's checkbox is
#: not "All events" nor a group's "select all".
ADD_LINK = r"e.matches('a, button') && /add (a )?webhook/i.test(e.innerText || e.value || '')"
URL_FIELD = r"""e.matches('input') && /\bURL\b/.test([...(e.labels || [])].map(l => l.innerText)
    .join(' ') + ' ' + (e.getAttribute('aria-label') || ''))"""
EVENT_BOX = r"""e.matches('input[type=checkbox][name]:not([data-wh-select-all],.select-all)')
    && !/select.?all/i.test([...e.attributes].map(a => a.name).join(' ')) && !/all/i.test(e.name)
    && /event|type/i.test(e.name + ' ' + (e.closest('fieldset, [role=group]')?.innerText || ''))"""
SUBMIT = r"""e.matches('button, input[type=submit]') && (e.type === 'submit')
    && /add webhook|save/i.test(e.innerText || e.value || '')"""
CLOSED_GROUP = r"e.matches('summary') && !e.parentElement.open"


def tab_to(page, predicate: str, what: str, limit: int = 150) -> None:
    """Press Tab until the focused element matches ``predicate``, as a keyboard user would,
    opening collapsed groups (``<details>``) met on the way with Enter."""

    def focused(test: str) -> bool:
        return page.evaluate(f"(() => {{ const e = document.activeElement; return {test}; }})()")

    for _ in range(limit):
        page.keyboard.press("Tab")
        if focused(predicate):
            return
        if focused(CLOSED_GROUP):
            page.keyboard.press("Enter")
    focused = page.evaluate("document.activeElement.outerHTML.slice(0, 200)")
    raise AssertionError(f"{limit} Tabs never reached {what}; focus is on {focused}")


PLAUSIBLE_ADD_FORM = """<!DOCTYPE html><html lang="en"><body><main>
<p><a href="#">Webhooks</a></p>
<form method="post">
<label for="d">Description</label> <input id="d" name="description">
<label for="u">URL</label> <input id="u" type="url" name="url">
<fieldset><legend>Events</legend><input type="search" aria-label="Search event types">
<details><summary>Articles</summary>
<label><input type="checkbox" class="select-all"> Select all</label>
<label><input type="checkbox" name="event_types" value="1"> <code>article.created</code></label>
</details></fieldset>
<button type="button">Cancel</button> <button type="submit">Add webhook</button>
</form></main></body></html>"""


def test_the_keyboard_helpers_find_their_way_through_a_collapsed_event_picker(browser):
    """The add flow above, on a form shaped as the add page is expected to be (its event
    types in a closed group): the harness itself must not be what fails after the merge."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_content(PLAUSIBLE_ADD_FORM)
        tab_to(page, URL_FIELD, "URL")
        page.keyboard.type("https://example.com/hook")
        tab_to(page, EVENT_BOX, "an event checkbox")
        page.keyboard.press("Space")
        tab_to(page, SUBMIT, "submit")
        assert page.input_value("#u") == "https://example.com/hook"
        assert page.is_checked("input[value='1']") and not page.is_checked(".select-all")
        assert page.evaluate("document.activeElement.innerText") == "Add webhook"
    finally:
        context.close()


def portal_route_or_none(name: str) -> str | None:
    try:
        return reverse(f"webhooks_portal:{name}")
    except NoReverseMatch:
        return None


def test_add_a_webhook_by_keyboard_alone(portal, live_server, acme, request):
    from webhooks.models import EventType, Subscription

    if portal_route_or_none("add") is None:
        request.applymarker(
            pytest.mark.xfail(strict=False, reason="add page not merged yet (webhooks_portal:add)")
        )
    url = inbox(live_server, acme)
    portal.goto(PORTAL)

    tab_to(portal, ADD_LINK, '"Add webhook"')
    portal.keyboard.press("Enter")
    portal.wait_for_url(re.compile(r"/new/"))
    tab_to(portal, URL_FIELD, 'the field labelled "URL"')
    portal.keyboard.type(url)
    tab_to(portal, EVENT_BOX, "an event type's checkbox")
    portal.keyboard.press("Space")
    ticked = portal.evaluate(
        "(() => { const e = document.activeElement; return [e.checked,"
        " (e.closest('label') || e.labels?.[0] || e.parentElement).innerText]; })()"
    )
    assert ticked[0], "Space did not tick the focused event type"
    # Past every other event type of the catalogue (each with its example to skip): many Tabs.
    tab_to(portal, SUBMIT, 'the "Add webhook" / "Save" button', limit=600)
    portal.keyboard.press("Enter")

    created = wait_for(lambda: Subscription.objects.filter(url=url).first())
    assert created is not None, f"no webhook to {url} after Enter on submit; page: {portal.url}"
    assert created.scope == acme.scope
    # The type ticked: the longest type name its label shows (the label may show only a title).
    named = [t for t in EventType.objects.values_list("name", flat=True) if t in ticked[1]]
    subscribed = set(created.event_types.values_list("name", flat=True))
    if named:
        assert subscribed == {max(named, key=len)}
    else:
        assert len(subscribed) == 1, subscribed


def wait_for(find, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = find()
        if found:
            return found
        time.sleep(0.1)
    return find()


# A webhook to the demo receiver, a test event, its delivery in the log ----------------------


def test_add_a_webhook_send_a_test_event_and_see_it_delivered(portal, live_server, acme):
    """Each step runs when its page is merged; missing steps are done through the ORM so
    the rest still run, and the test ends skipped, naming them, if any was missing."""
    from example_project.demo_receiver.models import ReceivedWebhook
    from webhooks.models import Delivery, EventType, Subscription

    url = inbox(live_server, acme)
    missing = []

    add = portal_route_or_none("add")
    if add:
        portal.goto(add)
        portal.get_by_label("URL", exact=False).first.fill(url)
        portal.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
        portal.locator("input[type=checkbox][name*=event]").first.check()
        portal.get_by_role("button", name=re.compile("add webhook|save", re.I)).first.click()
        webhook = wait_for(lambda: Subscription.objects.filter(url=url).first())
        assert webhook is not None and webhook.scope == acme.scope
    else:
        missing.append("add (webhooks_portal:add)")
        webhook = Subscription.objects.create(scope=acme.scope, url=url, description="Inbox")
        webhook.event_types.set(EventType.objects.filter(is_active=True)[:1])

    objects = {
        "webhook": webhook,
        "delivery": None,
        "attempt": None,
        "event": None,
        "event_type": "webhook.test",
    }
    test_page = route("test", objects)
    if test_page:
        portal.goto(test_page)
        portal.get_by_role("button", name=re.compile(r"send", re.I)).first.click()
        received = wait_for(lambda: ReceivedWebhook.objects.filter(name="acme").first(), 15)
        assert received is not None, "the demo receiver got nothing after 'Send test event'"
        assert received.verified, received.error
    else:
        missing.append("test event (webhooks_portal:test)")
        from webhooks import actions

        actions.send_test_event(webhook)
        wait_for(lambda: ReceivedWebhook.objects.filter(name="acme").exists(), 15)

    delivered = wait_for(
        lambda: Delivery.objects.filter(subscription=webhook, status="succeeded").first(), 15
    )
    assert delivered is not None, "the test event's delivery did not succeed"
    log = route("deliveries", {**objects, "delivery": delivered})
    if log:
        portal.goto(log)
        text = portal.inner_text("body")
        assert delivered.event.type in text, f"{delivered.event.type} not in the log"
        assert re.search(r"succeeded|delivered", text, re.I), "the log shows no success"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        portal.screenshot(path=str(SCREENSHOTS / "portal-flow-deliveries-1400.png"))
    else:
        missing.append("deliveries log (webhooks_portal:deliveries)")
    if missing:
        pytest.skip("not merged yet, done without the portal: " + ", ".join(missing))
