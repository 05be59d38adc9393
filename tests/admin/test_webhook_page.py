"""A webhook's page: its health at a glance, and test / rotate / resend-failed buttons."""

import re
import socket
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.admin.helpers import act_in_background, change_url, messages_of, progress_text, seed
from tests.receiver import Answer
from webhooks.models import Delivery, DeliveryAttempt

pytestmark = pytest.mark.django_db

S, F, P = Delivery.Status.SUCCEEDED, Delivery.Status.FAILED, Delivery.Status.PENDING


def test_health_shows_success_rates_failures_and_recent_deliveries(
    admin_client, subscribe, receiver
):
    sub = subscribe(receiver, ["article.created"])
    now = timezone.now()
    seed(sub, 3, status=S, created_at=now - timedelta(hours=1), attempts=True)
    seed(sub, 1, status=F, status_code=500, created_at=now - timedelta(hours=2), attempts=True)
    seed(sub, 2, status=P, status_code=503, created_at=now - timedelta(minutes=5), attempts=True)
    seed(sub, 4, status=F, status_code=500, created_at=now - timedelta(days=3), attempts=True)
    seed(sub, 1, status=S, created_at=now - timedelta(days=9))  # outside both windows
    sub.consecutive_failures = 4
    sub.save()

    response = admin_client.get(change_url(sub))
    html = response.content.decode()
    day = re.sub(r"\s+", " ", html[html.index('id="wh-rate-day"') :][:300])
    week = re.sub(r"\s+", " ", html[html.index('id="wh-rate-week"') :][:300])
    # Attempts (one per seeded delivery): 3 of 6 in the day, 3 of 10 in the week.
    assert '<b class="wh-bad">50%</b> 3 of 6 attempts succeeded' in day
    assert "2 still owed (2 due now)" in day
    assert '<b class="wh-bad">30%</b> 3 of 10 attempts succeeded' in week
    assert re.search(
        r'id="wh-state">State\s*<b class="wh-bad">Failing</b>\s*4 failed attempts', html
    )
    health = response.context["health"]
    assert len(health.recent) == 10  # the newest ten
    assert [d.status for d in health.recent[:2]] == [P, P]
    assert len(health.bars) == 24 and sum(b.total for b in health.bars) == 6
    assert html.count('class="s"') == 1 and html.count('class="f"') == 1
    assert html.count('class="p"') == 1


def test_health_says_why_a_webhook_was_disabled(admin_client, subscribe, receiver):
    sub = subscribe(receiver, is_active=False, disabled_reason="The receiver answered 410 Gone.")
    html = admin_client.get(change_url(sub)).content.decode()
    assert "Disabled" in html and "The receiver answered 410 Gone." in html
    assert "No deliveries yet" in html


def test_send_test_event_runs_after_the_request_and_the_page_shows_its_outcome(
    admin_client, subscribe, receiver, commit
):
    sub = subscribe(receiver, ["article.created"])
    url = f"{change_url(sub)[:-7]}send-test/"
    response = act_in_background(admin_client, url, commit, receiver=receiver)
    assert re.match(r"Test event delivered: HTTP 200 in \d+ ms", progress_text(response))
    assert receiver.types() == ["webhook.test"]
    assert response.context["health"].recent[0].event.type == "webhook.test"
    # The box asks for news by itself, at a URL limited to this delivery.
    html = response.content.decode()
    assert 'id="wh-progress"' in html and "webhooks/progress.js" in html
    poll = re.search(r'data-url="([^"]+)"', html[html.index('id="wh-progress"') - 300 :])
    state = admin_client.get(poll.group(1).replace("&amp;", "&")).json()
    assert state["done"] is True and state["ok"] is True and state["succeeded"] == 1


def test_before_the_worker_sends_the_box_says_it_is_sending(admin_client, subscribe, receiver):
    sub = subscribe(receiver, ["article.created"])
    # No commit: the request's work is queued, not yet run (as with a busy worker).
    response = admin_client.post(f"{change_url(sub)[:-7]}send-test/", follow=True)
    assert progress_text(response) == "Test event: sending…"
    assert response.context["progress"]["done"] is False
    assert receiver.requests == []


def test_send_an_example_of_a_type_the_webhook_receives(admin_client, subscribe, receiver, commit):
    from webhooks.models import EventType

    sub = subscribe(receiver, ["article.created", "article.updated"])
    page = admin_client.get(change_url(sub)).content.decode()
    assert '<option value="article.created">an example of article.created</option>' in page
    assert "article.deleted" not in page.split('id="wh-example-type"')[1].split("</select>")[0]
    url = f"{change_url(sub)[:-7]}send-test/"
    response = act_in_background(
        admin_client, url, commit, {"event_type": "article.updated"}, receiver=receiver
    )
    assert re.match(r"Example article.updated event delivered: HTTP 200", progress_text(response))
    assert receiver.types() == ["article.updated"]
    example = EventType.objects.get(name="article.updated").example_payload
    assert receiver.requests[0].json()["data"] == example
    # A type it does not receive is refused, and nothing is sent.
    response = admin_client.post(url, {"event_type": "article.deleted"}, follow=True)
    assert messages_of(response) == ["This webhook does not receive 'article.deleted' events."]
    assert len(receiver.requests) == 1


def test_send_test_event_reports_a_failure_in_plain_words(
    admin_client, subscribe, receiver, commit
):
    sub = subscribe(receiver, ["article.created"])
    receiver.answer(Answer(500, body="boom"))
    url = f"{change_url(sub)[:-7]}send-test/"
    response = act_in_background(admin_client, url, commit)
    # The code once, not "HTTP 500 … — The receiver answered 500."
    assert re.match(r"Test event failed: HTTP 500 in \d+ ms\.$", progress_text(response))

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        sub.url = f"http://127.0.0.1:{s.getsockname()[1]}/hook"
    sub.save()
    response = act_in_background(admin_client, url, commit)
    assert re.match(
        r"Test event failed: Connection refused after \d+ ms\.$", progress_text(response)
    )
    # A failed test does not count toward switching the webhook off.
    sub.refresh_from_db()
    assert sub.consecutive_failures == 0 and sub.failing_since is None


def test_rotate_secret_shows_the_new_one_once_and_keeps_the_old_signing(
    admin_client, subscribe, receiver, settings
):
    settings.WEBHOOKS_SECRET_ROTATION_OVERLAP = 600
    sub = subscribe(receiver, ["article.created"])
    old = sub.secret
    response = admin_client.post(f"{change_url(sub)[:-7]}rotate-secret/", follow=True)
    sub.refresh_from_db()
    assert sub.secret != old and sub.signing_secrets() == [sub.secret, old]
    expires = sub.previous_secret_expires_at - timezone.now()
    assert timedelta(seconds=590) < expires <= timedelta(seconds=600)
    html = response.content.decode()
    assert sub.secret in html and old not in html
    assert "The old one keeps signing too until" in messages_of(response)[0]
    assert sub.secret not in admin_client.get(change_url(sub)).content.decode()


def test_resend_failed_since_resends_only_that_window(
    admin_client, subscribe, receiver, commit, settings
):
    settings.WEBHOOKS_RETRY_SCHEDULE = []
    sub = subscribe(receiver, ["article.created"])
    recent = seed(sub, 2, status=F, created_at=timezone.now() - timedelta(hours=2))
    seed(sub, 1, status=F, created_at=timezone.now() - timedelta(days=3))
    since = (timezone.now() - timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M")
    response = act_in_background(
        admin_client, f"{change_url(sub)[:-7]}recover/", commit, {"since": since}, receiver=receiver
    )
    assert messages_of(response) == [
        f"2 failed deliveries are queued to be resent (failed since {since.replace('T', ' ')} UTC)."
    ]
    assert (
        progress_text(response)
        == "Resending failed deliveries: 2 of 2 sent — 2 delivered, 0 failed."
    )
    assert len(receiver.requests) == 2
    assert set(Delivery.objects.filter(status=S).values_list("pk", flat=True)) == {
        d.pk for d in recent
    }
    assert DeliveryAttempt.objects.filter(trigger="manual").count() == 2


def test_resend_failed_since_refuses_a_future_or_missing_date(admin_client, subscribe, receiver):
    sub = subscribe(receiver, ["article.created"])
    future = (timezone.now() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    response = admin_client.post(f"{change_url(sub)[:-7]}recover/", {"since": future}, follow=True)
    assert messages_of(response) == ["Pick a moment in the past."]
    response = admin_client.post(f"{change_url(sub)[:-7]}recover/", {}, follow=True)
    assert messages_of(response) == ["Enter the time to resend from, e.g. 2026-12-04 09:00."]


@pytest.mark.parametrize("action", ["send-test", "rotate-secret", "recover", "disable", "enable"])
def test_actions_need_a_post(admin_client, subscribe, receiver, action):
    sub = subscribe(receiver, ["article.created"])
    assert admin_client.get(f"{change_url(sub)[:-7]}{action}/").status_code == 405
    assert receiver.requests == []


@pytest.mark.parametrize("action", ["send-test", "rotate-secret", "recover", "disable", "enable"])
def test_staff_who_may_only_view_cannot_act(viewer_client, subscribe, receiver, acme, action):
    sub = subscribe(receiver, ["article.created"], scope=acme.scope)
    secret = sub.secret
    page = viewer_client.get(change_url(sub))
    assert page.status_code == 200
    assert b"wh-send-test" not in page.content and b"wh-rotate-secret" not in page.content
    response = viewer_client.post(f"{change_url(sub)[:-7]}{action}/", {"since": "2020-01-01"})
    assert response.status_code == 403
    sub.refresh_from_db()
    assert receiver.requests == [] and sub.secret == secret


def test_disable_with_a_reason_then_enable_from_the_webhook_page(admin_client, subscribe, receiver):
    sub = subscribe(receiver, ["article.created"])
    page = admin_client.get(change_url(sub)).content.decode()
    assert 'id="wh-disable"' in page and 'name="reason"' in page and 'id="wh-enable"' not in page
    response = admin_client.post(
        f"{change_url(sub)[:-7]}disable/", {"reason": "Receiver moving to a new host"}, follow=True
    )
    sub.refresh_from_db()
    assert not sub.is_active and sub.disabled_at is not None
    assert sub.disabled_reason == "Switched off by root in the admin: Receiver moving to a new host"
    html = response.content.decode()
    assert "Receiver moving to a new host" in html[html.index('id="wh-disabled-reason"') :][:300]
    assert 'id="wh-enable"' in html and 'id="wh-disable"' not in html
    assert messages_of(response) == [
        "The webhook is disabled: nothing is sent to it until enabled."
    ]

    # Enabling starts afresh, as the API's enable does: no old failure streak left to
    # switch it off again at once.
    sub.consecutive_failures, sub.failing_since = 9, timezone.now() - timedelta(days=6)
    sub.save()
    response = admin_client.post(f"{change_url(sub)[:-7]}enable/", follow=True)
    sub.refresh_from_db()
    assert sub.is_active and sub.disabled_reason == "" and sub.disabled_at is None
    assert sub.consecutive_failures == 0 and sub.failing_since is None
    assert messages_of(response) == ["The webhook is enabled."]


def test_disabling_without_a_reason_says_who(admin_client, subscribe, receiver):
    sub = subscribe(receiver, ["article.created"])
    admin_client.post(f"{change_url(sub)[:-7]}disable/", {"reason": "  "})
    sub.refresh_from_db()
    assert not sub.is_active and sub.disabled_reason == "Switched off by root in the admin."


def test_disable_and_enable_selected_webhooks_from_the_list(admin_client, subscribe, receiver):
    on = [subscribe(receiver, ["article.created"]) for _ in range(2)]
    off = subscribe(receiver, ["article.created"], is_active=False, disabled_reason="410 Gone")
    off.consecutive_failures = 5
    off.save()
    listing = admin_client.get("/admin/webhooks/subscription/")
    choices = [name for name, _ in listing.context["action_form"].fields["action"].choices]
    assert {"disable_selected", "enable_selected", "delete_selected"} <= set(choices)
    response = admin_client.post(
        "/admin/webhooks/subscription/",
        {"action": "disable_selected", "_selected_action": [str(s.pk) for s in on]},
        follow=True,
    )
    assert messages_of(response) == ["2 webhooks are disabled."]
    for sub in on:
        sub.refresh_from_db()
        assert not sub.is_active and sub.disabled_reason == "Switched off by root in the admin."
    response = admin_client.post(
        "/admin/webhooks/subscription/",
        {"action": "enable_selected", "_selected_action": [str(off.pk)]},
        follow=True,
    )
    assert messages_of(response) == ["1 webhook is enabled."]
    off.refresh_from_db()
    assert off.is_active and off.consecutive_failures == 0 and off.disabled_reason == ""


@pytest.mark.parametrize("action", ["disable", "enable"])
def test_staff_who_may_only_view_cannot_switch_a_webhook(
    viewer_client, subscribe, receiver, acme, action
):
    sub = subscribe(receiver, ["article.created"], scope=acme.scope)
    page = viewer_client.get(change_url(sub)).content.decode()
    assert 'id="wh-disable"' not in page
    assert viewer_client.post(f"{change_url(sub)[:-7]}{action}/").status_code == 403
    sub.refresh_from_db()
    assert sub.is_active


@pytest.mark.parametrize(
    "overlap, kept",
    [("0", None), ("3600", timedelta(hours=1)), ("604800", timedelta(days=7))],
)
def test_rotation_keeps_the_old_secret_signing_for_the_overlap_chosen(
    admin_client, subscribe, receiver, overlap, kept
):
    sub = subscribe(receiver, ["article.created"])
    old = sub.secret
    page = admin_client.get(change_url(sub)).content.decode()
    choices = re.findall(r'<option value="(\d+)"[^>]*>([^<]+)</option>', page)
    assert [label for _, label in choices if _ in ("0", "3600", "86400", "604800")] == [
        "none: the old secret stops at once",
        "1 hour",
        "24 hours",
        "7 days",
    ]
    response = admin_client.post(
        f"{change_url(sub)[:-7]}rotate-secret/", {"overlap": overlap}, follow=True
    )
    sub.refresh_from_db()
    assert sub.secret != old
    if kept is None:
        assert sub.signing_secrets() == [sub.secret] and sub.previous_secret == ""
        assert messages_of(response) == ["A new signing secret was made; it alone signs now."]
    else:
        assert sub.signing_secrets() == [sub.secret, old]
        left = sub.previous_secret_expires_at - timezone.now()
        assert kept - timedelta(seconds=10) < left <= kept


def test_rotation_refuses_an_overlap_it_does_not_offer(admin_client, subscribe, receiver):
    sub = subscribe(receiver, ["article.created"])
    old = sub.secret
    response = admin_client.post(
        f"{change_url(sub)[:-7]}rotate-secret/", {"overlap": "99999999"}, follow=True
    )
    sub.refresh_from_db()
    assert sub.secret == old
    assert messages_of(response) == [
        "Choose how long the old secret keeps signing: none, 1 hour, 24 hours or 7 days."
    ]


def test_the_shown_once_secret_has_a_copy_button_that_says_copied(
    admin_client, subscribe, receiver
):
    sub = subscribe(receiver, ["article.created"])
    html = admin_client.post(f"{change_url(sub)[:-7]}rotate-secret/", follow=True).content.decode()
    box = html[html.index('id="wh-secret"') :]
    box = box[: box.index("</div>")]
    assert 'data-wh-copy="wh-secret-value"' in box and "webhooks/copy.js" in html
    assert re.search(r'id="wh-copy-status"[^>]*aria-live="polite"', box)


def test_resending_one_failed_delivery_does_not_say_failed_twice(
    admin_client, subscribe, receiver, commit
):
    sub = subscribe(receiver, ["article.created"])
    seed(sub, 1, status=F, created_at=timezone.now() - timedelta(hours=2))
    receiver.answer(Answer(500))
    since = (timezone.now() - timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M")
    response = act_in_background(
        admin_client, f"{change_url(sub)[:-7]}recover/", commit, {"since": since}
    )
    assert re.match(r"Resend failed: HTTP 500 in \d+ ms\.$", progress_text(response))


def test_the_send_test_event_button_is_what_the_readme_calls_it(admin_client, subscribe, receiver):
    """The README tells people to press "Send test event": that is the button's label."""
    from tests.docs.codeblocks import ROOT

    page = admin_client.get(change_url(subscribe(receiver, ["article.created"]))).content.decode()
    assert '<button type="submit" class="button" id="wh-send-test">Send test event</button>' in page
    assert "**Send test event**" in (ROOT / "README.md").read_text()
