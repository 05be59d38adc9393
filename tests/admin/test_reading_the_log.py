"""The pages say what is true, in words a person reads right: the webhook list, the
delivery list's filters, a failing webhook's health, an attempt's request and response."""

import json
import re
import socket
from datetime import UTC, timedelta

import pytest
from django.utils import timezone

from tests.admin.helpers import DELIVERIES_URL, change_url, seed
from webhooks import actions, health_hours
from webhooks.models import Delivery, DeliveryAttempt

pytestmark = pytest.mark.django_db

S, F, P = Delivery.Status.SUCCEEDED, Delivery.Status.FAILED, Delivery.Status.PENDING
WEBHOOKS_URL = "/admin/webhooks/subscription/"


def row_of(html: str, text: str) -> str:
    rows = re.findall(r"<tr.*?</tr>", html, re.S)
    [row] = [r for r in rows if text in r]
    return re.sub(r"\s+", " ", row)


def test_the_webhook_list_shows_state_last_delivery_and_the_days_success_rate(
    admin_client, subscribe, receiver
):
    now = timezone.now()
    good = subscribe(receiver, ["article.created"], description="Good one")
    seed(good, 3, status=S, created_at=now - timedelta(hours=2), attempts=True)
    failing = subscribe(receiver, ["article.created"], description="Failing one")
    seed(failing, 1, status=S, created_at=now - timedelta(hours=3), attempts=True)
    seed(failing, 3, status=F, status_code=500, created_at=now - timedelta(hours=1), attempts=True)
    failing.consecutive_failures, failing.failing_since = 9, now - timedelta(hours=3)
    failing.save()
    off = subscribe(receiver, ["article.created"], description="Off one", is_active=False)
    subscribe(receiver, ["article.created"], description="Quiet one")

    html = admin_client.get(WEBHOOKS_URL).content.decode()
    for header in ["State", "Last delivery", "Success, 24 h"]:
        assert header in html
    assert "Working" in row_of(html, "Good one") and "100%" in row_of(html, "Good one")
    row = row_of(html, "Failing one")
    assert "Failing" in row and "25%" in row and "failed, HTTP 500" in row
    assert "Disabled" in row_of(html, "Off one")
    assert "none yet" in row_of(html, "Quiet one")

    def listed(query):
        response = admin_client.get(WEBHOOKS_URL + query)
        return {str(s) for s in response.context["cl"].result_list}

    assert listed("?state=failing") == {"Failing one"}
    assert listed("?state=disabled") == {"Off one"}
    assert "By is active" not in html and "By state" in html
    assert off.pk  # listed above


def test_the_delivery_list_filters_by_class_of_response(admin_client, subscribe, receiver):
    sub = subscribe(receiver, ["article.created"])
    ok = seed(sub, 2, status=S, status_code=204)
    client_error = seed(sub, 1, status=F, status_code=404)
    server_error = seed(sub, 1, status=P, status_code=503)
    no_answer = seed(sub, 1, status=P, status_code=None)
    seed(sub, 1, status=P, status_code=None)  # never tried: no answer expected yet
    Delivery.objects.filter(pk=no_answer[0].pk).update(attempt_count=2)
    Delivery.objects.filter(last_status_code=None).exclude(pk=no_answer[0].pk).update(
        attempt_count=0
    )

    def listed(query):
        response = admin_client.get(DELIVERIES_URL + query)
        return {d.pk for d in response.context["cl"].result_list}

    assert listed("?response=2xx") == {d.pk for d in ok}
    assert listed("?response=4xx") == {d.pk for d in client_error}
    assert listed("?response=5xx") == {d.pk for d in server_error}
    assert listed("?response=none") == {d.pk for d in no_answer}
    assert listed("?response=3xx") == set()
    assert listed("?state=retrying") == {d.pk for d in server_error + no_answer}


def test_a_failing_webhook_never_reads_zero_of_zero(admin_client, subscribe, receiver, settings):
    """36 failed attempts over 18 deliveries still being retried."""
    settings.WEBHOOKS_RETRY_SCHEDULE = [60, 60, 60]
    sub = subscribe(receiver, ["article.created"])
    deliveries = seed(sub, 18, status=P, status_code=500)
    now = timezone.now()
    Delivery.objects.filter(subscription=sub).update(last_attempt_at=now - timedelta(minutes=1))
    attempts = DeliveryAttempt.objects.bulk_create(
        DeliveryAttempt(
            delivery=d,
            number=n,
            request_url=sub.url,
            response_status_code=500,
            error_kind="http_5xx",
            created_at=now - timedelta(minutes=n),
        )
        for d in deliveries
        for n in (1, 2)
    )
    health_hours.count(attempts)  # as the worker records them
    sub.consecutive_failures, sub.failing_since = 36, now - timedelta(hours=1)
    sub.save()
    html = admin_client.get(change_url(sub)).content.decode()
    day = re.sub(r"\s+", " ", html[html.index('id="wh-rate-day"') :][:400])
    assert "0 of 0" not in html
    assert '<b class="wh-bad">0%</b> 0 of 36 attempts succeeded' in day
    assert "18 still owed" in day
    assert '<b class="wh-bad">Failing</b>' in html


def test_the_attempt_shows_request_and_response_with_the_body_and_plain_error(
    admin_client, subscribe, receiver, commit
):
    sub = subscribe(receiver, ["article.created"], basic_auth_username="u")
    sub.basic_auth_password = "hunter2-secret"
    sub.save()
    with commit():  # sent once committed
        delivery = actions.send_test_event(sub)  # 200
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        sub.url = f"http://127.0.0.1:{s.getsockname()[1]}/hook"
    sub.save()
    with commit():
        actions.resend_one(delivery)  # refused

    html = admin_client.get(change_url(delivery)).content.decode()
    assert html.count('class="wh-exchange"') == 2
    exchange = html[html.index('class="wh-exchange"') :]
    request_side = exchange[: exchange.index('class="wh-side wh-response"')]
    body = json.loads(DeliveryAttempt.objects.get(delivery=delivery, number=1).request_body)
    pretty = json.dumps(body, indent=2).replace('"', "&quot;")
    assert pretty in request_side  # the body, pretty-printed
    assert "webhook-signature" in request_side and "hunter2-secret" not in html
    second = html[html.rindex('class="wh-exchange"') :]
    assert "Connection refused" in second
    assert "connection_refused" not in html
    assert re.search(r"Connection refused</b> after\s+\d+ ms", second)


def test_small_words(admin_client, subscribe, receiver, client):
    sub = subscribe(receiver, ["article.created"])
    html = admin_client.get(change_url(sub)).content.decode()
    assert '<option value="86400" selected>24 hours</option>' in html
    assert "24.0 hours" not in html
    index = admin_client.get("/admin/").content.decode()
    assert "Demo receiver" in index and "DEMO_RECEIVER" not in index.replace("demo_receiver", "")
    assert client.get("/favicon.ico").status_code == 200


def test_the_progress_box_reports_only_the_users_own_tenant(
    acme_client, subscribe, receiver, globex, commit
):
    from datetime import datetime

    theirs = subscribe(receiver, ["article.created"], scope=globex.scope)
    since = datetime.now(UTC) - timedelta(seconds=1)
    with commit():
        delivery = actions.send_test_event(theirs)  # delivered: one manual attempt
    delivery.refresh_from_db()
    assert delivery.status == S
    params = {"label": "Test event", "since": since.isoformat(), "expected": 1}
    for target in ({"delivery": delivery.pk}, {"webhook": theirs.pk}, {}):
        state = acme_client.get(DELIVERIES_URL + "progress/", {**params, **target}).json()
        assert state == {
            "done": False,
            "ok": None,
            "text": "Test event: sending…",
            "succeeded": 0,
            "failed": 0,
        }


def test_the_progress_box_needs_permission_to_view_deliveries(subscribe, receiver, acme):
    from tests.admin.conftest import client_for, staff_of

    blind = client_for(staff_of(acme, "bob", ["view_subscription"]))
    assert blind.get(DELIVERIES_URL + "progress/", {"expected": 1}).status_code == 403
