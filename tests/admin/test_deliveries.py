"""The delivery log: list, filters, search, the attempt details, resending; read-only."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.admin.helpers import (
    DELIVERIES_URL,
    act_in_background,
    change_url,
    messages_of,
    progress_text,
    seed,
)
from tests.receiver import Answer
from tests.testapp.models import Article
from webhooks.models import Delivery, DeliveryAttempt

pytestmark = pytest.mark.django_db


def listed(client, query="") -> set:
    response = client.get(DELIVERIES_URL + query)
    assert response.status_code == 200
    return {d.pk for d in response.context["cl"].result_list}


@pytest.fixture
def delivered(subscribe, receiver, commit):
    """One article.created delivered to a webhook with basic auth."""
    sub = subscribe(
        receiver, ["article.created"], basic_auth_username="u", basic_auth_password="secret-pw"
    )
    receiver.answer(Answer(200, body='{"thanks": true}', headers={"X-Receipt": "r-1"}))
    with commit():
        Article.objects.create(title="Fractions")
    return Delivery.objects.get(subscription=sub)


def test_the_list_shows_type_webhook_state_code_retry_and_time(admin_client, subscribe, receiver):
    sub = subscribe(receiver, ["article.created"], description="Grades sync")
    [pending] = seed(sub, 1, status=Delivery.Status.PENDING, status_code=503)
    response = admin_client.get(DELIVERIES_URL)
    html = response.content.decode()
    for header in ["Event type", "Webhook", "State", "Created"]:
        assert header in html
    assert "Created" in html and "Show counts" not in html
    assert "article.created" in html and "Grades sync" in html and "503" in html
    # A delivery being retried says so, with its attempt and when the next one is.
    next_at = timezone.localtime(pending.next_attempt_at).strftime("%H:%M:%S")  # today
    assert (
        '<span class="wh-status wh-status-retrying">'
        f"Retrying (attempt 1 failed, next at {next_at})</span> "
        '<span class="wh-muted">HTTP 503</span>'
    ) in html
    assert response.context["cl"].show_full_result_count is False


def test_filters_by_status_event_type_webhook_and_date(admin_client, subscribe, receiver):
    a = subscribe(receiver, ["article.created"])
    b = subscribe(receiver, ["article.created"])
    ok = seed(a, 2)
    failed = seed(a, 1, status=Delivery.Status.FAILED, event_type="article.updated")
    other = seed(b, 1)
    Delivery.objects.filter(pk=other[0].pk).update(created_at=timezone.now() - timedelta(days=40))

    assert listed(admin_client, "?state=failed") == {failed[0].pk}
    assert listed(admin_client, "?event_type=article.updated") == {failed[0].pk}
    assert listed(admin_client, f"?webhook={b.pk}") == {other[0].pk}
    changelist = admin_client.get(DELIVERIES_URL).context["cl"]
    [dates] = [f for f in changelist.filter_specs if f.title == "created at"]
    [past_week] = [c for c in dates.choices(changelist) if c["display"] == "Past 7 days"]
    assert listed(admin_client, past_week["query_string"]) == {d.pk for d in ok + failed}
    html = admin_client.get(DELIVERIES_URL).content.decode()
    assert "By event type" in html and "By webhook" in html and "By created at" in html


def test_search_by_event_id_webhook_id_subscription_id_and_url(
    admin_client, subscribe, receiver, other_receiver
):
    a = subscribe(receiver, ["article.created"])
    b = subscribe(other_receiver, ["article.created"])
    [da] = seed(a, 1)
    [db] = seed(b, 1)
    assert listed(admin_client, f"?q={da.event_id}") == {da.pk}
    assert listed(admin_client, f"?q={db.webhook_id}") == {db.pk}
    assert listed(admin_client, f"?q={b.pk}") == {db.pk}
    assert listed(admin_client, f"?q=127.0.0.1:{other_receiver.port}") == {db.pk}
    assert listed(admin_client, "?q=nowhere.example") == set()


def test_the_delivery_page_shows_payload_and_every_attempt(admin_client, delivered):
    html = admin_client.get(change_url(delivered)).content.decode()
    assert "Fractions" in html  # the payload
    assert delivered.webhook_id in html
    assert "HTTP 200" in html and "ms" in html
    assert "webhook-signature" in html and "Basic [redacted]" in html
    assert "secret-pw" not in html
    assert "X-Receipt" in html and "thanks" in html  # response headers and body


def test_a_failed_attempt_shows_its_error(admin_client, subscribe, receiver, commit):
    sub = subscribe(receiver, ["article.created"])
    receiver.answer(Answer(500, body="database is down"))
    with commit():
        Article.objects.create(title="x")
    html = admin_client.get(change_url(Delivery.objects.get(subscription=sub))).content.decode()
    assert "HTTP 500" in html and "database is down" in html
    # Said once: the code, not also its class and a sentence repeating it.
    attempts = text_of(html[html.index('id="attempts-group"') :])
    assert "HTTP 5xx from receiver" not in attempts and "answered 500" not in attempts
    assert attempts.count("HTTP 500") == 2  # the attempt's outcome line, and its response


def text_of(html: str) -> str:
    import re

    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_an_attempt_without_an_answer_says_what_happened_once(
    admin_client, subscribe, receiver, commit
):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        sub = subscribe(receiver, ["article.created"])
        sub.url = f"http://127.0.0.1:{s.getsockname()[1]}/hook"
    sub.save()
    with commit():
        Article.objects.create(title="x")
    html = admin_client.get(change_url(Delivery.objects.get(subscription=sub))).content.decode()
    attempts = text_of(html[html.index('id="attempts-group"') :])
    assert attempts.count("Connection refused") == 2  # outcome line and response side
    assert "refused the connection" not in attempts and "No answer" not in attempts


def test_a_redirect_says_it_is_not_followed_without_repeating_the_code(
    admin_client, subscribe, receiver, commit
):
    sub = subscribe(receiver, ["article.created"])
    receiver.answer(Answer(301, headers={"Location": "https://elsewhere.example/"}))
    with commit():
        Article.objects.create(title="x")
    html = admin_client.get(change_url(Delivery.objects.get(subscription=sub))).content.decode()
    attempts = text_of(html[html.index('id="attempts-group"') :])
    assert "Redirect (not followed)" in attempts and "answered 301" not in attempts


def test_deliveries_and_attempts_are_read_only(admin_client, delivered):
    assert admin_client.get(DELIVERIES_URL + "add/").status_code == 403
    response = admin_client.post(change_url(delivered), {"status": "failed"})
    assert response.status_code == 403
    assert admin_client.post(change_url(delivered)[:-7] + "delete/").status_code == 403
    page = admin_client.get(change_url(delivered))
    assert b'name="_save"' not in page.content
    assert "delete_selected" not in page.context.get("actions", [])
    choices = [
        name
        for name, _ in admin_client.get(DELIVERIES_URL)
        .context["action_form"]
        .fields["action"]
        .choices
    ]
    assert choices == ["", "resend_selected"]
    delivered.refresh_from_db()
    assert delivered.status == Delivery.Status.SUCCEEDED
    assert admin_client.get("/admin/webhooks/deliveryattempt/").status_code == 404


def test_resend_selected_is_a_manual_attempt_with_the_same_webhook_id(
    admin_client, delivered, receiver, commit
):
    response = act_in_background(
        admin_client,
        DELIVERIES_URL,
        commit,
        {"action": "resend_selected", "_selected_action": [str(delivered.pk)]},
        receiver=receiver,
    )
    assert messages_of(response) == ["1 delivery is queued to be resent."]
    assert progress_text(response).startswith("Resend delivered: HTTP 200 in ")
    assert len(receiver.requests) == 2
    assert {r.headers["webhook-id"] for r in receiver.requests} == {delivered.webhook_id}
    assert list(delivered.attempts.values_list("trigger", flat=True)) == ["automatic", "manual"]


def test_resend_on_the_delivery_page_shows_the_outcome(admin_client, delivered, receiver, commit):
    receiver.answer(Answer(502))
    url = change_url(delivered)[:-7] + "resend/"
    response = act_in_background(admin_client, url, commit, receiver=receiver)
    assert progress_text(response).startswith("Resend failed: HTTP 502 in ")
    # Delivered once, then a resend failed: the state says both, not a bare "Succeeded".
    assert "Succeeded (a later resend failed)" in response.content.decode()
    response = act_in_background(admin_client, url, commit, receiver=receiver)
    assert progress_text(response).startswith("Resend delivered: HTTP 200 in ")
    assert delivered.attempts.count() == 3
    # Manual resends do not feed the auto-disable clock.
    delivered.subscription.refresh_from_db()
    assert delivered.subscription.consecutive_failures == 0


def test_staff_who_may_only_view_cannot_resend(viewer_client, subscribe, receiver, acme):
    sub = subscribe(receiver, ["article.created"], scope=acme.scope)
    [delivery] = seed(sub, 1, status=Delivery.Status.FAILED)
    page = viewer_client.get(change_url(delivery))
    assert page.status_code == 200 and b"wh-resend" not in page.content
    assert viewer_client.post(change_url(delivery)[:-7] + "resend/").status_code == 403
    response = viewer_client.post(
        DELIVERIES_URL, {"action": "resend_selected", "_selected_action": [str(delivery.pk)]}
    )
    assert response.status_code in (200, 302)
    assert receiver.requests == [] and not DeliveryAttempt.objects.exists()


def test_a_delivery_being_sent_right_now_is_not_resent_twice(admin_client, delivered, receiver):
    from webhooks import outbox

    outbox.claim([delivered.pk], due_only=False)  # a worker holds it
    response = admin_client.post(change_url(delivered)[:-7] + "resend/", follow=True)
    assert messages_of(response) == [
        "This delivery is being sent right now; try again in a moment."
    ]
    response = admin_client.post(
        DELIVERIES_URL,
        {"action": "resend_selected", "_selected_action": [str(delivered.pk)]},
        follow=True,
    )
    # In bulk it is queued, and sent again once the worker holding it is done.
    assert messages_of(response) == ["1 delivery is queued to be resent."]
    assert len(receiver.requests) == 1
