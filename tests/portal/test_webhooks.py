"""A customer's webhooks in the portal: the list, one webhook's page, add, edit, switch off
and on. One customer's only, with the figures and the state defined in webhooks.stats."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.admin.helpers import seed
from tests.factories import EventTypeFactory, SubscriptionFactory
from webhooks import stats
from webhooks.models import Delivery, EventType, Subscription
from webhooks.validation import MASK

pytestmark = pytest.mark.django_db

PORTAL = "/settings/integrations/webhooks/"
S, F, P = Delivery.Status.SUCCEEDED, Delivery.Status.FAILED, Delivery.Status.PENDING


def signed_in(user, **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


def text(html: str) -> str:
    """The page's words, as a person reads them."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def row_of(html: str, words: str) -> str:
    [row] = [r for r in re.findall(r"<tr.*?</tr>", html, re.S) if words in r]
    return text(row)


def types(*names) -> list[str]:
    return [str(pk) for pk in EventType.objects.filter(name__in=names).values_list("pk", flat=True)]


def form_data(**overrides) -> dict:
    data = {
        "description": "Grades sync",
        "url": "http://127.0.0.1:9/hook",
        "event_types": types("article.created", "article.updated"),
        "basic_auth_username": "",
        "basic_auth_password": "",
        "headers": "",
        "sensitive_headers": "",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


@pytest.fixture
def client(acme):
    return signed_in(acme.user)


@pytest.fixture
def viewer(acme):
    """A member of Acme who may look at its webhooks but not change them."""
    acme.user.groups.clear()
    acme.user.user_permissions.add(Permission.objects.get(codename="view_subscription"))
    return signed_in(acme.user)


def detail(webhook) -> str:
    return f"{PORTAL}{webhook.pk}/"


# -- the list -------------------------------------------------------------------------------


def test_the_list_shows_whole_urls_state_last_delivery_and_the_days_success_rate(client, acme):
    now = timezone.now()
    base = "https://hooks.example.com/platform/integrations/receivers/customer-4411/port-86"
    refused = SubscriptionFactory(scope=acme.scope, url=base + "99/refused", description="CRM")
    seed(refused, 1, status=S, created_at=now - timedelta(hours=3), attempts=True)
    seed(refused, 3, status=F, status_code=500, created_at=now - timedelta(hours=1), attempts=True)
    refused.consecutive_failures, refused.failing_since = 3, now - timedelta(hours=1)
    refused.save()
    error = SubscriptionFactory(scope=acme.scope, url=base + "03/500", description="Grades")
    seed(error, 4, status=S, created_at=now - timedelta(hours=2), attempts=True)
    SubscriptionFactory(
        scope=acme.scope,
        description="Old export",
        is_active=False,
        disabled_reason="The receiver answered 410 Gone.",
    )
    SubscriptionFactory(scope=acme.scope, description="Quiet", all_events=True)

    html = client.get(PORTAL).content.decode()

    # Two URLs differing only at their end are both there, whole.
    assert base + "99/refused" in html and base + "03/500" in html
    crm = row_of(html, "CRM")
    assert "Failing" in crm and "3 failed attempts in a row" in crm
    assert "failed, HTTP 500" in crm and "25% 1 of 4 attempts" in crm
    grades = row_of(html, "Grades")
    assert "Working" in grades and "HTTP 200" in grades and "100% 4 of 4 attempts" in grades
    old = row_of(html, "Old export")
    assert "Disabled" in old and "The receiver answered 410 Gone." in old
    quiet = row_of(html, "Quiet")
    assert "All events" in quiet and "none yet" in quiet and "— no attempts" in quiet
    assert 'href="/settings/integrations/webhooks/new/"' in html and "Add webhook" in html


def test_the_list_costs_the_same_queries_for_one_webhook_or_many(client, acme):
    def add_webhooks(n):
        for _ in range(n):
            webhook = SubscriptionFactory(scope=acme.scope, events=["article.created"])
            seed(webhook, 2, status=F, status_code=502, attempts=True)
            seed(webhook, 1, status=S, attempts=True)

    def count() -> int:
        client.get(PORTAL)  # warm the per-process caches
        with CaptureQueriesContext(connection) as captured:
            assert client.get(PORTAL).status_code == 200
        return len(captured)

    add_webhooks(1)
    one = count()
    add_webhooks(12)
    assert count() == one


def test_a_viewer_sees_the_webhooks_but_no_add_edit_or_switch(viewer, acme):
    webhook = SubscriptionFactory(scope=acme.scope, description="Grades")
    listed = viewer.get(PORTAL).content.decode()
    assert "Grades" in listed and "Add webhook" not in listed
    page = viewer.get(detail(webhook)).content.decode()
    assert "Grades" in page
    assert "/edit/" not in page and "/disable/" not in page and "Switch off" not in page


# -- one webhook's page -------------------------------------------------------------------


def test_the_webhooks_page_shows_its_settings_state_and_the_figures_of_webhooks_stats(client, acme):
    webhook = SubscriptionFactory(
        scope=acme.scope,
        url="https://hooks.example.com/grades",
        events=["article.created", "article.updated"],
        basic_auth_username="hooks",
        basic_auth_password="hunter2-secret",
        headers={"X-Team": "grades", "X-Api-Key": "key-123-secret"},
    )
    now = timezone.now()
    seed(webhook, 3, status=S, created_at=now - timedelta(hours=1), attempts=True)
    five_minutes_ago = now - timedelta(minutes=5)
    seed(webhook, 1, status=P, status_code=503, created_at=five_minutes_ago, attempts=True)
    figures = stats.endpoint(webhook)

    html = client.get(detail(webhook)).content.decode()
    words = text(html)

    assert "https://hooks.example.com/grades" in words
    assert "article.created" in words and "article.updated" in words
    assert f"{stats.percent_text(figures.success_rate_24h)} 3 of 4 attempts succeeded" in words
    assert f"{figures.latency_p50_ms} ms median" in words
    assert "1 pending, 1 due now" in words
    assert "failed, HTTP 503" in words  # the last attempt
    assert "Failing" in words and "The last attempt failed: HTTP 503" in words
    assert "X-Team: grades" in words and f"X-Api-Key: {MASK}" in words
    assert re.search(r"user hooks ?, password set", words)
    for secret in ("hunter2-secret", "key-123-secret", webhook.secret):
        assert secret not in html
    assert 'id="whp-webhook-actions"' in html  # where Secret, Test and Deliveries go


def test_the_webhooks_page_costs_the_same_queries_whatever_its_history(client, acme):
    webhook = SubscriptionFactory(scope=acme.scope, events=["article.created"])

    def count() -> int:
        client.get(detail(webhook))
        with CaptureQueriesContext(connection) as captured:
            assert client.get(detail(webhook)).status_code == 200
        return len(captured)

    seed(webhook, 2, status=F, status_code=500, attempts=True)
    few = count()
    seed(webhook, 300, status=S, attempts=True)
    seed(webhook, 100, status=P, status_code=503, attempts=True)
    assert count() == few


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "{pk}/"),
        ("get", "{pk}/edit/"),
        ("post", "{pk}/edit/"),
        ("post", "{pk}/disable/"),
        ("post", "{pk}/enable/"),
    ],
)
def test_another_customers_webhook_is_not_found_and_stays_as_it_was(client, globex, method, path):
    theirs = SubscriptionFactory(scope=globex.scope, url="https://globex.example/hook")
    missing = "5b2f7c1e-0000-4000-8000-000000000000"
    for pk in (theirs.pk, missing):
        response = getattr(client, method)(PORTAL + path.format(pk=pk), form_data(reason="x"))
        assert response.status_code == 404
        assert b"globex.example" not in response.content
    theirs.refresh_from_db()
    assert theirs.is_active and theirs.url == "https://globex.example/hook"


def test_a_customer_outside_the_plan_cannot_open_a_webhook(client, acme):
    webhook = SubscriptionFactory(scope=acme.scope)
    acme.organisation.is_pro = False
    acme.organisation.save()
    assert client.get(detail(webhook)).status_code == 403


@pytest.mark.parametrize("path", ["new/", "{pk}/edit/", "{pk}/disable/", "{pk}/enable/"])
def test_a_viewer_can_change_nothing(viewer, acme, path):
    webhook = SubscriptionFactory(scope=acme.scope, url="https://acme.example/hook")
    url = PORTAL + path.format(pk=webhook.pk)
    assert viewer.get(url).status_code == 403
    assert viewer.post(url, form_data(url="https://acme.example/other")).status_code == 403
    webhook.refresh_from_db()
    assert webhook.is_active and webhook.url == "https://acme.example/hook"
    assert Subscription.objects.count() == 1


# -- add ------------------------------------------------------------------------------------


def test_adding_a_webhook_puts_it_in_the_customers_scope_and_shows_its_secret_once(
    client, acme, globex
):
    response = client.post(
        PORTAL + "new/",
        # A request naming another customer or owner is not listened to.
        form_data(scope=globex.scope, owner=globex.user.pk, is_active=""),
    )
    webhook = Subscription.objects.get()
    assert response.status_code == 302 and response["Location"] == detail(webhook)
    assert webhook.scope == acme.scope and webhook.owner == acme.user and webhook.is_active
    assert sorted(webhook.event_types.values_list("name", flat=True)) == [
        "article.created",
        "article.updated",
    ]
    assert webhook.secret not in response["Location"]

    assert client.head(detail(webhook)).status_code == 200  # (a link prefetch) spends nothing
    first = client.get(detail(webhook)).content.decode()
    assert f'<code id="whp-secret-value">{webhook.secret}</code>' in first
    assert "Shown once" in first
    again = client.get(detail(webhook)).content.decode()
    assert webhook.secret not in again and "Shown once" not in again
    assert webhook.secret not in client.get(PORTAL).content.decode()
    assert webhook.secret not in client.get(detail(webhook) + "edit/").content.decode()


def test_adding_without_any_event_is_refused_with_the_reason(client):
    response = client.post(PORTAL + "new/", form_data(event_types=[]))
    assert response.status_code == 400
    assert "Choose at least one event, or “All events”." in text(response.content.decode())
    assert not Subscription.objects.exists()


def test_a_pasted_over_long_url_is_refused_not_cut(client):
    long_url = "https://example.com/" + "a" * (5037 - len("https://example.com/"))
    form = client.get(PORTAL + "new/").content.decode()
    url_input = re.search(r'<input type="url"[^>]*>', form).group(0)
    assert "maxlength" not in url_input  # the browser would cut a paste silently

    response = client.post(PORTAL + "new/", form_data(url=long_url))
    assert response.status_code == 400
    errors = response.context["form"].errors["url"]
    assert any("2000" in error and "5037" in error for error in errors)  # found, allowed
    assert "Nothing was saved" in text(response.content.decode())
    assert not Subscription.objects.exists()


def test_a_url_that_may_not_receive_webhooks_is_refused(client):
    response = client.post(PORTAL + "new/", form_data(url="javascript:alert(1)"))
    assert response.status_code == 400 and "url" in response.context["form"].errors
    assert not Subscription.objects.exists()


def test_the_number_of_webhooks_per_customer_is_limited(client, acme, settings):
    settings.WEBHOOKS_MAX_WEBHOOKS_PER_SCOPE = 1
    SubscriptionFactory(scope=acme.scope)
    response = client.post(PORTAL + "new/", form_data())
    assert response.status_code == 400 and "1 is the most allowed" in response.content.decode()
    assert Subscription.objects.count() == 1


def test_the_event_picker_shows_descriptions_and_examples_grouped_and_works_without_script(
    client, acme
):
    EventTypeFactory(
        name="grade.released",
        category="Grades",
        description="A grade was released to the student.",
        example_payload={"grade": {"id": 7, "score": 91}},
    )
    EventTypeFactory(name="grade.changed", category="Grades", description="A grade changed.")
    html = client.get(PORTAL + "new/").content.decode()

    group = html[html.index("<legend>Grades") :]
    group = group[: group.index("</fieldset>")]
    # The description is text on the page, not a tooltip; the example, one click away.
    assert '<p class="whp-type-description"' in group
    assert "A grade was released to the student." in text(group)
    assert "title=" not in group
    example = json.dumps({"grade": {"id": 7, "score": 91}}, indent=2).replace('"', "&quot;")
    assert "<details" in group and example in group

    # Without JavaScript, the category's "select all" box selects its types.
    response = client.post(
        PORTAL + "new/", form_data(event_types=[], event_types__category="Grades")
    )
    assert response.status_code == 302
    webhook = Subscription.objects.get(scope=acme.scope)
    assert set(webhook.event_types.values_list("name", flat=True)) == {
        "grade.released",
        "grade.changed",
    }


# -- edit -----------------------------------------------------------------------------------


def test_editing_changes_the_webhook_and_keeps_write_only_values_unshown(client, acme):
    webhook = SubscriptionFactory(
        scope=acme.scope,
        events=["article.created"],
        basic_auth_username="hooks",
        basic_auth_password="hunter2-secret",
        headers={"X-Api-Key": "key-123-secret"},
    )
    form = client.get(detail(webhook) + "edit/").content.decode()
    assert "hunter2-secret" not in form and "key-123-secret" not in form
    assert MASK in form

    response = client.post(
        detail(webhook) + "edit/",
        form_data(
            url="http://127.0.0.1:9/new",
            event_types=types("article.updated"),
            basic_auth_username="hooks",
            headers=json.dumps({"X-Api-Key": MASK, "X-Team": "grades"}),
        ),
    )
    assert response.status_code == 302 and response["Location"] == detail(webhook)
    webhook.refresh_from_db()
    assert webhook.url == "http://127.0.0.1:9/new" and webhook.scope == acme.scope
    assert list(webhook.event_types.values_list("name", flat=True)) == ["article.updated"]
    assert webhook.basic_auth_password == "hunter2-secret"  # empty field: kept
    assert webhook.headers == {"X-Api-Key": "key-123-secret", "X-Team": "grades"}
    assert "was saved" in text(client.get(detail(webhook)).content.decode())


def test_a_refused_edit_leaves_the_webhook_as_it_was(client, acme):
    webhook = SubscriptionFactory(scope=acme.scope, url="https://acme.example/hook")
    response = client.post(
        detail(webhook) + "edit/",
        form_data(url="http://127.0.0.1:9/new", headers='{"Content-Type": "text/plain"}'),
    )
    assert response.status_code == 400
    assert "cannot be overridden" in response.content.decode()
    webhook.refresh_from_db()
    assert webhook.url == "https://acme.example/hook"


# -- switch off and on -------------------------------------------------------------------


def test_switching_off_with_a_reason_shows_it_in_the_list_and_on_the_page(client, acme):
    webhook = SubscriptionFactory(scope=acme.scope, description="Grades")
    response = client.post(
        detail(webhook) + "disable/", {"reason": "  Receiver moving\nto a new host "}
    )
    assert response.status_code == 302 and response["Location"] == detail(webhook)
    webhook.refresh_from_db()
    assert not webhook.is_active and webhook.disabled_at is not None
    reason = "Switched off by acme-user in the portal: Receiver moving to a new host"
    assert webhook.disabled_reason == reason

    page = text(client.get(detail(webhook)).content.decode())
    assert "Disabled" in page and reason in page and "is switched off" in page
    assert "Switch on" in page and "Switch off" not in page
    assert reason in row_of(client.get(PORTAL).content.decode(), "Grades")


def test_switching_on_clears_the_failure_state_as_the_admin_and_api_do(client, acme):
    webhook = SubscriptionFactory(
        scope=acme.scope,
        is_active=False,
        disabled_reason="Every delivery has failed since …",
        disabled_at=timezone.now(),
        consecutive_failures=40,
        failing_since=timezone.now() - timedelta(days=3),
    )
    response = client.post(detail(webhook) + "enable/")
    assert response.status_code == 302
    webhook.refresh_from_db()
    assert webhook.is_active and webhook.disabled_reason == "" and webhook.disabled_at is None
    assert webhook.consecutive_failures == 0 and webhook.failing_since is None
    assert "is on again" in text(client.get(detail(webhook)).content.decode())


def test_switching_is_post_only_and_csrf_protected(acme):
    webhook = SubscriptionFactory(scope=acme.scope)
    strict = signed_in(acme.user, enforce_csrf_checks=True)
    assert strict.get(detail(webhook) + "disable/").status_code == 405
    assert strict.post(detail(webhook) + "disable/").status_code == 403  # no token
    assert strict.post(PORTAL + "new/", form_data()).status_code == 403
    webhook.refresh_from_db()
    assert webhook.is_active and Subscription.objects.count() == 1

    page = strict.get(detail(webhook)).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = strict.post(detail(webhook) + "disable/", {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    webhook.refresh_from_db()
    assert not webhook.is_active


# -- odd rows -----------------------------------------------------------------------------


def test_rows_written_by_any_path_do_not_break_the_pages(client, acme):
    odd = SubscriptionFactory(scope=acme.scope, description="<script>alert(1)</script>")
    Subscription.objects.filter(pk=odd.pk).update(
        sensitive_headers="not a list", url="not a url at all"
    )
    EventTypeFactory(name="odd.type", category="", description="", example_payload=[1, "two"])
    for url in (PORTAL, detail(odd), detail(odd) + "edit/", PORTAL + "new/"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert b"<script>alert(1)</script>" not in response.content


def test_a_magic_link_session_adds_and_switches_off_in_its_one_scope(acme, globex, monkeypatch):
    """A session with no Django user (webhooks.portal.magic): the scope is the link's."""
    from webhooks.portal import magic
    from webhooks.portal.access import PortalAccess

    link = PortalAccess(scope=acme.scope, can_change=True, user=None, via_link=True)
    monkeypatch.setattr(magic, "session_access", lambda request: link)
    anonymous = Client()

    response = anonymous.post(PORTAL + "new/", form_data(scope=globex.scope), follow=True)
    webhook = Subscription.objects.get()
    assert response.redirect_chain == [(detail(webhook), 302)]
    assert webhook.scope == acme.scope and webhook.owner is None
    page = response.content.decode()
    assert webhook.secret in page and "The webhook “Grades sync” was added." in text(page)

    anonymous.post(detail(webhook) + "disable/", {"reason": "testing"})
    webhook.refresh_from_db()
    assert webhook.disabled_reason == "Switched off in the portal: testing"
