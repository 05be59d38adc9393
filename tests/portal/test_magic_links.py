"""Magic links: single use, expiring, signed, one scope, the portal only; and the iframe
headers of every portal page."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.core import signing
from django.core.management import CommandError, call_command
from django.test import Client, override_settings
from django.utils import timezone

from tests.api.conftest import make_tenant
from tests.factories import SubscriptionFactory
from webhooks import retention
from webhooks.models import PortalLinkUse
from webhooks.portal import magic as magic_module
from webhooks.portal import magic_link

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.portal.urls")]

PORTAL = "/settings/integrations/webhooks/"
CHANGE = PORTAL + "probe-change/"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0"


def browser() -> Client:
    return Client(HTTP_USER_AGENT=BROWSER)


@pytest.fixture
def acme():
    tenant = make_tenant("Acme")
    SubscriptionFactory(scope=tenant.scope, url="https://acme.example/hook")
    return tenant


@pytest.fixture
def globex():
    tenant = make_tenant("Globex")
    SubscriptionFactory(scope=tenant.scope, url="https://globex.example/hook")
    return tenant


def later(monkeypatch, seconds: float) -> None:
    """The clock of the links and their sessions moves on by ``seconds``."""
    now = time.time() + seconds
    monkeypatch.setattr(magic_module.time, "time", lambda: now)


def test_a_link_opens_the_portal_of_its_customer_and_no_other(acme, globex):
    visitor = browser()
    opened = visitor.get(magic_link(acme.scope))

    assert opened.status_code == 303 and opened["Location"] == PORTAL
    page = visitor.get(PORTAL)
    assert page.status_code == 200
    assert b"https://acme.example/hook" in page.content
    assert b"globex" not in page.content
    assert visitor.get(CHANGE).content == f"may change {acme.scope}".encode()


def test_a_link_opens_once(acme):
    link = magic_link(acme.scope)
    assert browser().get(link).status_code == 303

    again = browser().get(link)  # another browser, or the same one: used up
    assert again.status_code == 410
    assert b"already been used" in again.content and b"Ask for a new link" in again.content
    assert b"acme" not in again.content.lower()  # nothing about whose link it was


def test_a_link_checker_asking_for_headers_does_not_use_it_up(acme):
    link = magic_link(acme.scope)
    assert browser().head(link).status_code == 405
    assert browser().get(link).status_code == 303


def test_an_expired_link_is_refused(acme, monkeypatch):
    link = magic_link(acme.scope, max_age=60)
    later(monkeypatch, 61)

    page = browser().get(link)
    assert page.status_code == 410
    assert b"This link has expired" in page.content
    assert not PortalLinkUse.objects.exists()


def test_the_expiry_defaults_to_the_setting(acme, monkeypatch, settings):
    settings.WEBHOOKS_PORTAL_LINK_MAX_AGE = 120
    link = magic_link(acme.scope)
    later(monkeypatch, 100)
    assert browser().get(link).status_code == 303
    link = magic_link(acme.scope)
    later(monkeypatch, 130)
    assert browser().get(link).status_code == 410


def tampered(link: str, **changes) -> str:
    """The link with its payload changed but its signature kept."""
    token = link.rstrip("/").rsplit("/", 1)[1]
    payload, _, signature = token.rpartition(":")
    _, _, stamp = payload.rpartition(":")
    data = signing.loads(token, salt=magic_module.LINK_SALT)
    forged = signing.dumps({**data, **changes}, salt="not-the-salt", compress=True)
    forged_payload = forged.rsplit(":", 2)[0]
    return f"{PORTAL}link/{forged_payload}:{stamp}:{signature}/"


def test_a_changed_link_is_refused(acme, globex):
    link = magic_link(acme.scope, can_change=False)
    token = link.rstrip("/").rsplit("/", 1)[1]
    flipped = token[:5] + ("A" if token[5] != "A" else "B") + token[6:]
    forgeries = [
        f"{PORTAL}link/{flipped}/",
        tampered(link, s=globex.scope),  # another customer
        tampered(link, c=True),  # a look-only link made into a changing one
        tampered(link, e=int(time.time()) + 10**6),  # a longer life
        # Signed by this site, but for something else (another salt): not a link.
        f"{PORTAL}link/{signing.dumps({'s': globex.scope}, compress=True)}/",
        f"{PORTAL}link/not-a-token/",
    ]
    for forged in forgeries:
        visitor = browser()
        page = visitor.get(forged)
        assert page.status_code == 403, forged
        assert b"This link is not valid" in page.content
        assert visitor.get(PORTAL).status_code == 302  # no session: off to the login
    assert not PortalLinkUse.objects.exists()
    assert browser().get(link).status_code == 303  # the genuine one still works


def test_a_look_only_link_cannot_change_anything(acme):
    visitor = browser()
    visitor.get(magic_link(acme.scope, can_change=False))

    assert visitor.get(PORTAL).status_code == 200
    assert visitor.get(CHANGE).status_code == 403


def test_a_link_session_is_not_a_login_to_the_admin_or_the_api(acme):
    visitor = browser()
    visitor.get(magic_link(acme.scope))

    admin = visitor.get("/admin/webhooks/subscription/")
    assert admin.status_code == 302 and admin["Location"].startswith("/admin/login/")
    api = visitor.get("/api/webhooks/subscriptions/")
    assert api.status_code in (401, 403)
    assert b"acme.example" not in api.content


def test_a_signed_in_user_sees_only_their_own_and_the_link_is_kept_for_later(acme, globex):
    """Decided: someone signed in is always themselves. A link opened while signed in is
    refused and not used up; a link session is ignored once someone signs in."""
    visitor = browser()
    visitor.force_login(globex.user)
    link = magic_link(acme.scope)

    page = visitor.get(link)
    assert page.status_code == 403 and b"You are signed in" in page.content
    assert b"acme.example" not in visitor.get(PORTAL).content
    assert not PortalLinkUse.objects.exists()

    visitor.logout()
    assert visitor.get(link).status_code == 303
    assert b"acme.example" in visitor.get(PORTAL).content
    visitor.force_login(globex.user)  # signing in ends what the link opened
    page = visitor.get(PORTAL)
    assert b"globex.example" in page.content and b"acme.example" not in page.content


def test_a_link_session_ends_after_its_max_age(acme, monkeypatch, settings):
    settings.WEBHOOKS_PORTAL_SESSION_MAX_AGE = 600
    visitor = browser()
    visitor.get(magic_link(acme.scope))
    later(monkeypatch, 599)
    assert visitor.get(PORTAL).status_code == 200
    later(monkeypatch, 601)

    page = visitor.get(PORTAL)
    assert page.status_code == 403
    assert b"Your session has ended" in page.content and b"acme.example" not in page.content
    assert visitor.get(PORTAL).status_code == 302  # and it is gone from the session


def test_a_link_session_is_bound_to_its_browser(acme):
    visitor = browser()
    visitor.get(magic_link(acme.scope))
    thief = Client(HTTP_USER_AGENT="curl/8.5.0")
    thief.cookies = visitor.cookies  # the session cookie, copied elsewhere

    page = thief.get(PORTAL)
    assert page.status_code == 403 and b"acme.example" not in page.content


def test_a_link_of_a_customer_outside_the_plan_is_refused_and_kept(acme):
    acme.organisation.is_pro = False
    acme.organisation.save()
    link = magic_link(acme.scope)

    page = browser().get(link)
    assert page.status_code == 403 and b"not part of this plan" in page.content
    assert not PortalLinkUse.objects.exists()


def test_the_plan_gate_applies_to_an_open_link_session(acme):
    visitor = browser()
    visitor.get(magic_link(acme.scope))
    acme.organisation.is_pro = False
    acme.organisation.save()

    page = visitor.get(PORTAL)
    assert page.status_code == 403 and b"acme.example" not in page.content


def test_next_is_a_portal_page_or_nothing(acme):
    visitor = browser()
    opened = visitor.get(magic_link(acme.scope, next=CHANGE + "?from=email"))
    assert opened["Location"] == CHANGE + "?from=email"
    for target in (
        "https://evil.example/",
        "//evil.example/settings/integrations/webhooks/",
        "/admin/",
        "/settings/integrations/webhooks/../../admin/",
        "/\\evil.example",
    ):
        with pytest.raises(ValueError, match="not a page of the portal"):
            magic_link(acme.scope, next=target)


def test_a_link_needs_a_customer():
    for scope in ("", None, "x" * 101):
        with pytest.raises(ValueError, match="scope of one customer"):
            magic_link(scope)


def test_base_url_makes_the_link_absolute(acme):
    link = magic_link(acme.scope, base_url="https://app.example.com/")
    assert link.startswith("https://app.example.com/settings/integrations/webhooks/link/")


def test_the_purge_forgets_used_links_once_they_have_expired(acme):
    now = timezone.now()
    PortalLinkUse.objects.create(nonce="old", expires_at=now - timedelta(minutes=1))
    PortalLinkUse.objects.create(nonce="current", expires_at=now + timedelta(minutes=1))

    report = retention.purge(now=now)

    assert report.portal_links == 1
    assert list(PortalLinkUse.objects.values_list("nonce", flat=True)) == ["current"]


def test_the_command_prints_a_working_link(acme, capsys):
    call_command(
        "webhooks_portal_link", acme.scope, "--read-only", "--base-url", "http://testserver"
    )
    link = capsys.readouterr().out.strip()
    assert link.startswith("http://testserver/settings/integrations/webhooks/link/")

    visitor = browser()
    assert visitor.get(link).status_code == 303
    assert visitor.get(PORTAL).status_code == 200
    assert visitor.get(CHANGE).status_code == 403  # --read-only


def test_the_command_refuses_a_customer_outside_the_plan(acme):
    acme.organisation.is_pro = False
    acme.organisation.save()
    with pytest.raises(CommandError, match="plan does not include webhooks"):
        call_command("webhooks_portal_link", acme.scope)


# -- iframes ----------------------------------------------------------------------------------


def framing(response) -> tuple[str, str | None]:
    return response["Content-Security-Policy"], response.headers.get("X-Frame-Options")


def test_portal_pages_may_be_framed_by_their_own_origin_only_by_default(acme):
    visitor = browser()
    opened = visitor.get(magic_link(acme.scope))
    responses = [
        opened,
        visitor.get(PORTAL),
        browser().get(PORTAL),  # the redirect to the login
        browser().get(f"{PORTAL}link/nonsense/"),  # a refusal
    ]
    for response in responses:
        assert framing(response) == ("frame-ancestors 'self'", "SAMEORIGIN")


@override_settings(
    WEBHOOKS_PORTAL_FRAME_ANCESTORS=[
        "https://app.example.com",
        "https://*.customer.example:8443/",
        "https://evil.example; script-src *",  # not an origin: left out
    ]
)
def test_configured_origins_may_frame_the_portal(acme):
    visitor = browser()
    visitor.get(magic_link(acme.scope))
    page = visitor.get(PORTAL)
    assert page.status_code == 200
    assert framing(page) == (
        "frame-ancestors 'self' https://app.example.com https://*.customer.example:8443",
        None,
    )


def test_pages_outside_the_portal_keep_their_framing_rules(acme):
    page = browser().get("/admin/login/")
    assert page["X-Frame-Options"] == "DENY"
    assert "Content-Security-Policy" not in page


def test_frame_ancestors_that_are_no_origins_are_reported(settings):
    from webhooks.checks import check_portal_settings

    settings.WEBHOOKS_PORTAL_FRAME_ANCESTORS = ["https://app.example.com", "https://x.example/a b"]
    assert [e.id for e in check_portal_settings()] == ["webhooks.E022"]
    settings.WEBHOOKS_PORTAL_FRAME_ANCESTORS = ["https://app.example.com"]
    assert check_portal_settings() == []


def test_link_and_session_ages_must_be_positive(settings):
    from webhooks.checks import check_portal_settings

    settings.WEBHOOKS_PORTAL_LINK_MAX_AGE = 0
    settings.WEBHOOKS_PORTAL_SESSION_MAX_AGE = "1h"
    assert [e.id for e in check_portal_settings()] == ["webhooks.E023", "webhooks.E023"]
