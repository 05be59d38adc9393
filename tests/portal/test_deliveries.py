"""The customer's deliveries log in the portal: cursor pages, filters, one delivery's
attempts, resend and recover with live progress — one customer's rows only."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

import webhooks
from example_project.organisations.models import Membership
from tests import test_no_http_in_transactions
from tests.admin.helpers import act_in_background, seed
from tests.api.conftest import make_tenant
from tests.factories import SubscriptionFactory
from tests.receiver import Answer
from webhooks.models import Delivery, DeliveryAttempt, Event, Subscription
from webhooks.portal import delivery_log
from webhooks.portal.delivery_log import PAGE_SIZE

pytestmark = pytest.mark.django_db

PORTAL = "/settings/integrations/webhooks/"
LOG = PORTAL + "deliveries/"


def signed_in(user, **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


def detail_url(delivery) -> str:
    return f"{LOG}{delivery.pk}/"


def shown(response) -> list:
    """The deliveries a log page lists, in order."""
    assert response.status_code == 200, response.content.decode()[:2000]
    return [row.pk for row in response.context["page"].rows]


def refused(response) -> list[str]:
    """The filter errors of a log page that refused its filters (and listed nothing)."""
    assert response.status_code == 400
    assert response.context["page"] is None
    html = response.content.decode()
    assert "correct the filters above" in html
    return [e for errors in response.context["form"].errors.values() for e in errors]


@pytest.fixture
def acme_client(acme):
    return signed_in(acme.user)


@pytest.fixture
def no_retries(settings):
    settings.WEBHOOKS_RETRY_SCHEDULE = []  # a failed attempt fails the delivery at once


# -- the log ----------------------------------------------------------------------------


def test_the_log_lists_newest_first_with_time_type_full_url_state_code_and_attempts(
    acme, acme_client, receiver, commit, no_retries
):
    long_url = receiver.url + "/" + "segment/" * 40  # 300+ characters: never cut
    sub = SubscriptionFactory(url=long_url, scope=acme.scope, all_events=True)
    receiver.answer(Answer(200), Answer(500))
    with commit():
        webhooks.send_event("article.created", {"n": 1}, scope=acme.scope)
    with commit():
        webhooks.send_event("article.updated", {"n": 2}, scope=acme.scope)
    ok, failed = Delivery.objects.filter(subscription=sub).order_by("created_at")

    response = acme_client.get(LOG)

    assert shown(response) == [failed.pk, ok.pk]
    html = response.content.decode()
    assert html.count(f'class="whp-url">{long_url}</td>') == 2
    assert "article.created" in html and "article.updated" in html
    assert ">Succeeded<" in html and ">Failed<" in html
    assert "HTTP 200" in html and "HTTP 500" in html
    assert f'href="{detail_url(ok)}"' in html and f'href="{detail_url(failed)}"' in html
    assert 'aria-current="page">Deliveries</a>' in html
    assert f'<time datetime="{timezone.localtime(ok.created_at).isoformat()}' in html


def test_pages_never_repeat_or_skip_rows_sharing_a_timestamp(acme, acme_client, receiver):
    sub = acme.subscription(receiver)
    moment = timezone.now() - timedelta(hours=1)
    same = seed(sub, PAGE_SIZE * 2 + 7, created_at=moment)  # one fan-out, one microsecond
    newer = seed(sub, 5)
    older = seed(sub, 3, created_at=moment - timedelta(minutes=1))
    everything = {d.pk for d in same + newer + older}

    pages, url = [], LOG
    while url:
        response = acme_client.get(url)
        pages.append(shown(response))
        older_cursor = response.context["page"].older
        url = f"{LOG}?after={older_cursor}" if older_cursor else None
    walked = [pk for page in pages for pk in page]
    assert len(walked) == len(set(walked)) == len(everything)
    assert set(walked) == everything
    assert set(pages[0][:5]) == {d.pk for d in newer}  # newest first
    assert set(pages[-1][-3:]) == {d.pk for d in older}

    # And back again, newer page by newer page, to the same pages.
    back = []
    response = acme_client.get(f"{LOG}?after={acme_client.get(LOG).context['page'].older}")
    for _ in range(len(pages)):
        back.append(shown(response))
        newer_cursor = response.context["page"].newer
        if not newer_cursor:
            break
        response = acme_client.get(f"{LOG}?before={newer_cursor}")
    assert back[-1] == pages[0] and back[0] == pages[1]


@pytest.mark.parametrize("bounded", [True, False], ids=["bounded", "too-many-webhooks"])
def test_pages_of_several_webhooks_interleave_in_time_order_both_ways(
    acme, acme_client, receiver, monkeypatch, bounded
):
    if not bounded:  # more webhooks than are bounded one by one: the plain sort
        monkeypatch.setattr(delivery_log, "MAX_REACHED_WEBHOOKS", 2)
    # Each page is read from at most a page of rows per webhook (delivery_log.within_reach):
    # rows of busy and quiet webhooks, some sharing a timestamp across webhooks, must still
    # come out whole, newest first, forwards and back.
    busy, quiet, idle = (acme.subscription(receiver, description=n) for n in "abc")
    start = timezone.now() - timedelta(days=1)
    for minute in range(PAGE_SIZE + 20):
        seed(busy, 2, created_at=start + timedelta(minutes=minute))
        if minute % 9 == 0:
            seed(quiet, 1, created_at=start + timedelta(minutes=minute))  # ties with busy
    seed(idle, 2, created_at=start + timedelta(minutes=3, seconds=30))
    expected = list(
        Delivery.objects.filter(subscription__in=[busy, quiet, idle])
        .order_by("-created_at", "-pk")
        .values_list("pk", flat=True)
    )

    pages, url = [], LOG
    while url:
        response = acme_client.get(url)
        pages.append(shown(response))
        cursor = response.context["page"].older
        url = f"{LOG}?after={cursor}" if cursor else None
    assert [pk for page in pages for pk in page] == expected
    assert len(pages) == 3

    response = acme_client.get(f"{LOG}?after={acme_client.get(LOG).context['page'].older}")
    response = acme_client.get(f"{LOG}?after={response.context['page'].older}")
    assert shown(response) == pages[2]
    response = acme_client.get(f"{LOG}?before={response.context['page'].newer}")
    assert shown(response) == pages[1]
    quiet_only = acme_client.get(f"{LOG}?webhook={quiet.pk}")
    assert shown(quiet_only) == [
        pk
        for pk in expected
        if pk in set(Delivery.objects.filter(subscription=quiet).values_list("pk", flat=True))
    ]


def test_the_pager_links_keep_the_filters(acme, acme_client, receiver):
    sub = acme.subscription(receiver)
    seed(sub, PAGE_SIZE + 1, status=Delivery.Status.FAILED)
    response = acme_client.get(LOG + "?state=failed")
    [older_link] = re.findall(r'href="\?([^"]+)" rel="next"', response.content.decode())
    params = parse_qs(older_link.replace("&amp;", "&"))
    assert params["state"] == ["failed"] and params["after"]
    assert len(shown(acme_client.get(LOG + "?" + older_link.replace("&amp;", "&")))) == 1


def test_the_log_costs_the_same_queries_for_5_rows_and_a_full_page(
    acme, acme_client, receiver, django_assert_max_num_queries
):
    subs = [acme.subscription(receiver, description=f"w{n}") for n in range(3)]
    for sub in subs:
        seed(sub, 2, attempts=True)

    def count(url):
        acme_client.get(url)  # warm the per-process caches
        # 13: the host's plan gate (WEBHOOKS_PLAN_GATE, the example's is_pro) is asked once
        # per request, in portal_access, and costs one query of its own.
        with django_assert_max_num_queries(13) as captured:
            assert acme_client.get(url).status_code == 200
        return len(captured)

    urls = [LOG, LOG + "?state=retrying", LOG + "?event_type=article.created"]
    small = [count(url) for url in urls]
    for sub in subs:
        seed(sub, 40, attempts=True)
        seed(sub, 40, status=Delivery.Status.PENDING, attempts=True)
    large = [count(url) for url in urls]
    assert large == small
    assert len(shown(acme_client.get(LOG))) == PAGE_SIZE


def test_each_filter_narrows_the_log(acme, acme_client, receiver, other_receiver):
    a = acme.subscription(receiver)
    b = acme.subscription(other_receiver)
    [ok] = seed(a, 1)
    [failed] = seed(a, 1, status=Delivery.Status.FAILED, event_type="article.updated")
    [retrying] = seed(b, 1, status=Delivery.Status.PENDING, status_code=503)
    [queued] = seed(b, 1, status=Delivery.Status.PENDING, status_code=None)
    Delivery.objects.filter(pk=queued.pk).update(attempt_count=0)
    [old] = seed(b, 1, created_at=timezone.now() - timedelta(days=40))

    assert shown(acme_client.get(LOG + "?state=succeeded")) == [ok.pk, old.pk]
    assert shown(acme_client.get(LOG + "?state=failed")) == [failed.pk]
    assert shown(acme_client.get(LOG + "?state=retrying")) == [retrying.pk]
    assert shown(acme_client.get(LOG + "?state=pending")) == [queued.pk]
    assert shown(acme_client.get(LOG + "?event_type=article.updated")) == [failed.pk]
    assert set(shown(acme_client.get(f"{LOG}?webhook={b.pk}"))) == {retrying.pk, queued.pk, old.pk}
    day = timezone.localdate(Delivery.objects.get(pk=old.pk).created_at)
    assert shown(acme_client.get(f"{LOG}?from_date={day}&to_date={day}")) == [old.pk]
    recent = timezone.localdate() - timedelta(days=1)
    assert old.pk not in shown(acme_client.get(f"{LOG}?from_date={recent}"))
    assert shown(acme_client.get(f"{LOG}?message={failed.webhook_id}")) == [failed.pk]
    assert shown(acme_client.get(f"{LOG}?message=%20{ok.event_id}%20")) == [ok.pk]
    Subscription.objects.filter(pk=b.pk).update(is_active=False)
    assert set(shown(acme_client.get(LOG + "?state=held"))) == {retrying.pk, queued.pk}


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("state=bogus", "Unknown state “bogus”: choose one of succeeded, retrying, pending"),
        ("event_type=nope.happened", "No event type is named “nope.happened”"),
        ("webhook=not-an-id", "None of your webhooks has the id “not-an-id”."),
        ("from_date=2026-13-01", "Enter the “from” date as YYYY-MM-DD"),
        ("to_date=yesterday", "Enter the “to” date as YYYY-MM-DD"),
        ("from_date=2026-12-05&to_date=2026-12-01", "The “to” date is before the “from” date."),
        ("message=hello", "“hello” is not a message id (msg_ and 32 letters and digits"),
        ("message=msg_zz", "“msg_zz” is not a message id"),
        ("after=garbage", "This page link is not valid"),
        ("before=MjAyNi0xMi0wNVQwMDowMDowMHxub3BlCg", "This page link is not valid"),
    ],
)
def test_bad_filters_are_refused_with_a_clear_message(acme, acme_client, receiver, query, error):
    seed(acme.subscription(receiver), 2)
    response = acme_client.get(f"{LOG}?{query}")
    messages = refused(response)
    assert any(m.startswith(error) for m in messages), messages
    assert error.split("“")[0] in response.content.decode().replace("&quot;", '"')


def test_another_customers_webhook_is_no_filter_into_their_log(acme, globex, acme_client, receiver):
    theirs = globex.subscription(receiver)
    seed(theirs, 3)
    seed(acme.subscription(receiver), 1)
    response = acme_client.get(f"{LOG}?webhook={theirs.pk}")
    assert refused(response) == [f"None of your webhooks has the id “{theirs.pk}”."]
    # Their webhook is not even among the choices, and nothing of theirs is on the page.
    assert str(theirs.pk) not in response.content.decode().replace(f"“{theirs.pk}”", "")
    [their_delivery] = seed(theirs, 1)
    assert shown(acme_client.get(f"{LOG}?message={their_delivery.webhook_id}")) == []
    assert shown(acme_client.get(f"{LOG}?message={their_delivery.event_id}")) == []
    assert len(shown(acme_client.get(LOG))) == 1


# -- one delivery -----------------------------------------------------------------------


@pytest.fixture
def delivered(acme, receiver, commit, no_retries):
    """One delivery that failed with a 500, with basic auth and a secret header."""
    sub = acme.subscription(
        receiver,
        basic_auth_username="u",
        basic_auth_password="pw-secret-1",
        headers={"X-Api-Token": "tok-secret-2", "X-Team": "payments"},
    )
    receiver.answer(Answer(500, body='{"error": "<b>db down</b>"}', headers={"X-Req": "r-9"}))
    with commit():
        webhooks.send_event("article.created", {"title": "<script>x</script>"}, scope=acme.scope)
    return Delivery.objects.get(subscription=sub)


def test_a_delivery_shows_its_event_and_each_attempts_request_and_response(
    acme_client, delivered, receiver
):
    [received] = receiver.requests
    html = acme_client.get(detail_url(delivered)).content.decode()
    assert delivered.webhook_id in html and str(delivered.event_id) in html
    assert "&lt;script&gt;x&lt;/script&gt;" in html and "<script>x</script>" not in html
    assert "&quot;title&quot;: &quot;&lt;script&gt;" in html  # pretty-printed, escaped
    assert "Attempt 1:" in html and "ms" in html and f"POST {delivered.subscription.url}" in html
    # The request's headers, with every secret hidden: basic auth, secret headers, signature.
    assert "X-Team" in html and "payments" in html and "webhook-timestamp" in html
    for secret in ("pw-secret-1", "tok-secret-2", received.headers["webhook-signature"]):
        assert secret not in html
    assert "Basic [redacted]" in html and html.count("[redacted]") >= 3
    # The response: status once, in plain words, headers and body escaped.
    assert "X-Req" in html and "r-9" in html and "&lt;b&gt;db down&lt;/b&gt;" in html
    assert "HTTP 5xx from receiver" not in html and "The receiver answered 500" not in html
    assert "differs from the bytes sent" not in html  # the rebuilt body is the one signed
    DeliveryAttempt.objects.filter(delivery=delivered).update(request_body_sha256="0" * 64)
    html = acme_client.get(detail_url(delivered)).content.decode()
    assert "differs from the bytes sent then" in html


def test_a_connection_error_says_what_happened_once(
    acme, acme_client, receiver, commit, no_retries
):
    sub = acme.subscription(receiver)
    receiver.stop()  # nobody listens: connection refused
    with commit():
        webhooks.send_event("article.created", {"n": 1}, scope=acme.scope)
    [attempt] = DeliveryAttempt.objects.filter(delivery__subscription=sub)
    html = acme_client.get(detail_url(attempt.delivery)).content.decode()
    headline = attempt.get_error_kind_display()
    assert f">{headline}<" in html and html.count(headline) == 1
    assert "<p>No response</p>" in html


def test_another_customers_delivery_is_not_found(acme_client, globex, receiver):
    [theirs] = seed(globex.subscription(receiver), 1, attempts=True)
    assert acme_client.get(detail_url(theirs)).status_code == 404
    assert acme_client.post(detail_url(theirs) + "resend/").status_code == 404
    assert acme_client.get(f"{LOG}00000000-0000-0000-0000-000000000000/").status_code == 404
    assert not Delivery.objects.filter(resend_requested_at__isnull=False).exists()


# -- odd rows ---------------------------------------------------------------------------


ODD_ATTEMPTS = [
    pytest.param({"request_headers": ["Authorization", "Bearer x"]}, id="headers-a-list"),
    pytest.param({"request_headers": "Authorization: Bearer leaked"}, id="headers-a-string"),
    pytest.param({"request_headers": {"Authorization": "Bearer leaked"}}, id="bearer-kept"),
    pytest.param({"request_headers": {"X-Api-Key": "leaked"}}, id="secret-header-kept"),
    pytest.param({"response_headers": "not an object"}, id="response-headers-a-string"),
    pytest.param({"response_headers": {"X": None, "Y": [1, {"z": 2}]}}, id="response-nested"),
    pytest.param({"response_body": "\x00\x01binary\x00" * 10}, id="body-nul"),
    pytest.param({"response_body": "x" * 2_000_000}, id="body-huge"),
    pytest.param({"response_body": '{"a": "</pre><script>alert(1)</script>"}'}, id="body-html"),
    pytest.param({"error_kind": "made-up", "error_message": "\x00odd"}, id="error-kind-unknown"),
    pytest.param({"response_status_code": 999, "succeeded": True}, id="status-999"),
    pytest.param({"request_url": "javascript:alert(1)"}, id="url-javascript"),
]


@pytest.mark.parametrize("odd", ODD_ATTEMPTS)
def test_odd_attempt_rows_never_break_the_log_or_the_page(acme, acme_client, receiver, odd):
    [delivery] = seed(acme.subscription(receiver), 1, attempts=True)
    try:
        with transaction.atomic():
            DeliveryAttempt.objects.filter(delivery=delivery).update(**odd)
    except DatabaseError as exc:
        pytest.skip(f"{connection.vendor} refuses this value, so no row can hold it: {exc}")
    assert shown(acme_client.get(LOG)) == [delivery.pk]
    page = acme_client.get(detail_url(delivery))
    assert page.status_code == 200
    html = page.content.decode()
    assert "leaked" not in html and "\x00" not in html
    assert "<script>alert(1)" not in html
    if "response_body" in odd and len(odd["response_body"]) > 100_000:
        assert "(the first 65,536 of 2,000,000 characters)" in html
        assert len(html) < 200_000


@pytest.mark.parametrize(
    "odd",
    [
        {"status": "bogus"},
        {"attempt_count": 0, "status": "pending", "next_attempt_at": None},
        {"last_status_code": 0},
        {"last_error": "\x00" * 10},
    ],
)
def test_odd_delivery_rows_never_break_the_log_or_the_page(acme, acme_client, receiver, odd):
    [delivery] = seed(acme.subscription(receiver), 1)
    try:
        with transaction.atomic():
            Delivery.objects.filter(pk=delivery.pk).update(**odd)
    except DatabaseError as exc:
        pytest.skip(f"{connection.vendor} refuses this value, so no row can hold it: {exc}")
    Event.objects.filter(pk=delivery.event_id).update(data=["not", {"an": "object"}], type="<b>")
    assert shown(acme_client.get(LOG)) == [delivery.pk]
    assert acme_client.get(detail_url(delivery)).status_code == 200


# -- resend and recover -----------------------------------------------------------------


def test_resend_from_the_delivery_page_redelivers_with_the_same_message_id(
    acme_client, delivered, receiver, commit
):
    receiver.answer(Answer(200))
    response = act_in_background(
        acme_client, detail_url(delivered) + "resend/", commit, receiver=receiver
    )
    assert len(receiver.requests) == 2
    assert {r.headers["webhook-id"] for r in receiver.requests} == {delivered.webhook_id}
    assert response.context["progress"]["text"].startswith("Resend delivered: HTTP 200 in ")
    html = response.content.decode()
    assert "The delivery is queued to be resent." in html
    assert "Attempt 2:" in html and "Manual" in html
    delivered.refresh_from_db()
    assert delivered.status == Delivery.Status.SUCCEEDED


def test_resend_selected_and_failed_from_the_log(acme, acme_client, receiver, commit, no_retries):
    sub = acme.subscription(receiver)
    receiver.answer(Answer(500), Answer(500), Answer(500))
    for n in range(3):
        with commit():
            webhooks.send_event("article.created", {"n": n}, scope=acme.scope)
    first, second, third = Delivery.objects.filter(subscription=sub).order_by("created_at")
    assert {d.status for d in (first, second, third)} == {"failed"}

    response = act_in_background(
        acme_client,
        LOG + "resend/",
        commit,
        {"resend": "selected", "delivery": [str(first.pk)], "state": "failed"},
        receiver=receiver,
    )
    assert "1 delivery is queued to be resent." in response.content.decode()
    assert response.request["QUERY_STRING"] == "state=failed"  # back to the same filters
    assert shown(response) == [third.pk, second.pk]  # the first one now succeeded
    assert [r.json()["data"]["n"] for r in receiver.requests[3:]] == [0]

    response = act_in_background(
        acme_client, LOG + "resend/", commit, {"resend": "failed"}, receiver=receiver
    )
    assert "2 deliveries are queued to be resent." in response.content.decode()
    assert response.context["progress"]["text"] == "Resend: 2 of 2 sent — 2 delivered, 0 failed."
    assert sorted(r.json()["data"]["n"] for r in receiver.requests[4:]) == [1, 2]
    assert set(Delivery.objects.values_list("status", flat=True)) == {"succeeded"}


def test_resending_another_customers_delivery_from_the_log_resends_nothing(
    acme, globex, acme_client, receiver, commit
):
    [mine] = seed(acme.subscription(receiver), 1, status=Delivery.Status.FAILED)
    [theirs] = seed(globex.subscription(receiver), 1, status=Delivery.Status.FAILED)
    for selection in ([str(theirs.pk)], [str(mine.pk), str(theirs.pk)], ["not-an-id"]):
        with commit():
            response = acme_client.post(
                LOG + "resend/", {"resend": "selected", "delivery": selection}, follow=True
            )
        assert "Nothing was resent" in response.content.decode()
    assert not receiver.requests
    assert not Delivery.objects.filter(resend_requested_at__isnull=False).exists()


def test_recover_since_a_time_redelivers_the_webhooks_failed_deliveries(
    acme, acme_client, receiver, other_receiver, commit, no_retries
):
    sub = acme.subscription(receiver)
    acme.subscription(other_receiver)
    receiver.answer(*[Answer(503)] * 3)
    other_receiver.answer(*[Answer(503)] * 3)
    for n in range(3):
        with commit():
            webhooks.send_event("article.created", {"n": n}, scope=acme.scope)
    Delivery.objects.filter(subscription=sub, event__data__n=0).update(
        created_at=timezone.now() - timedelta(days=3)
    )
    page = acme_client.get(f"{PORTAL}{sub.pk}/recover/")
    assert page.status_code == 200 and 'type="datetime-local"' in page.content.decode()
    assert f"{LOG}?webhook={sub.pk}" in page.content.decode()

    since = (timezone.localtime() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    response = act_in_background(
        acme_client, f"{PORTAL}{sub.pk}/recover/", commit, {"since": since}, receiver=receiver
    )
    assert "2 failed deliveries since" in response.content.decode()
    assert response.request["QUERY_STRING"] == f"webhook={sub.pk}"
    progress = response.context["progress"]
    assert progress["text"] == "Recover: 2 of 2 sent — 2 delivered, 0 failed."
    assert sorted(r.json()["data"]["n"] for r in receiver.requests[3:]) == [1, 2]
    assert len(other_receiver.requests) == 3  # the other webhook is left alone
    # The page's script asks the portal's progress URL, for this webhook.
    url = re.search(r'data-url="([^"]+)"', response.content.decode()).group(1)
    state = acme_client.get(url.replace("&amp;", "&")).json()
    assert state["done"] is True and state["succeeded"] == 2


@pytest.mark.parametrize(
    ("since", "error"),
    [
        ("", "Enter the time to resend from"),
        ("last tuesday", "Enter the time as YYYY-MM-DD HH:MM"),
        ("2999-01-01T00:00", "Pick a moment in the past."),
    ],
)
def test_recover_refuses_a_bad_time_and_resends_nothing(
    acme, acme_client, receiver, commit, since, error
):
    sub = acme.subscription(receiver)
    seed(sub, 2, status=Delivery.Status.FAILED)
    with commit():
        response = acme_client.post(f"{PORTAL}{sub.pk}/recover/", {"since": since})
    assert response.status_code == 400 and error in response.content.decode()
    assert not Delivery.objects.filter(resend_requested_at__isnull=False).exists()


def test_another_customers_webhook_cannot_be_recovered(acme_client, globex, receiver, commit):
    theirs = globex.subscription(receiver)
    seed(theirs, 2, status=Delivery.Status.FAILED)
    since = (timezone.localtime() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    assert acme_client.get(f"{PORTAL}{theirs.pk}/recover/").status_code == 404
    with commit():
        response = acme_client.post(f"{PORTAL}{theirs.pk}/recover/", {"since": since})
    assert response.status_code == 404
    assert not receiver.requests
    assert not Delivery.objects.filter(resend_requested_at__isnull=False).exists()


def test_the_progress_url_counts_only_this_customers_attempts(
    acme, globex, acme_client, receiver, commit, no_retries
):
    theirs = globex.subscription(receiver)
    with commit():
        webhooks.send_event("article.created", {"n": 1}, scope=globex.scope)
    [their_delivery] = Delivery.objects.filter(subscription=theirs)
    since = timezone.now() - timedelta(minutes=1)
    with commit():
        webhooks.actions.resend([their_delivery.pk])
    assert DeliveryAttempt.objects.filter(trigger="manual").count() == 1

    params = {"since": since.isoformat(), "expected": 1, "label": "Resend"}
    for target in ({}, {"webhook": theirs.pk}, {"delivery": their_delivery.pk}):
        state = acme_client.get(LOG + "progress/", {**params, **target}).json()
        assert state["succeeded"] == state["failed"] == 0 and state["done"] is False
    assert signed_in(globex.user).get(LOG + "progress/", params).json()["succeeded"] == 1
    # Nonsense parameters are harmless.
    assert acme_client.get(LOG + "progress/", {"since": "x", "expected": "y"}).status_code == 200


# -- who may do what --------------------------------------------------------------------


@pytest.fixture
def viewer(acme):
    """A member of Acme who may look at its webhooks but change nothing."""
    user = get_user_model().objects.create_user("acme-viewer", password="pw")
    user.user_permissions.add(Permission.objects.get(codename="view_subscription"))
    Membership.objects.create(user=user, organisation=acme.organisation)
    return user


def test_a_member_who_may_only_look_sees_the_log_but_cannot_resend(acme, viewer, receiver, commit):
    sub = acme.subscription(receiver)
    [failed] = seed(sub, 1, status=Delivery.Status.FAILED, attempts=True)
    client = signed_in(viewer)
    log = client.get(LOG)
    assert shown(log) == [failed.pk]
    assert b"Resend" not in log.content and b'type="checkbox"' not in log.content
    page = client.get(detail_url(failed))
    assert page.status_code == 200 and b"Resend now" not in page.content
    with commit():
        assert client.post(detail_url(failed) + "resend/").status_code == 403
        assert client.post(LOG + "resend/", {"resend": "failed"}).status_code == 403
        assert client.post(f"{PORTAL}{sub.pk}/recover/", {"since": "2020-01-01"}).status_code == 403
    assert not receiver.requests
    assert not Delivery.objects.filter(resend_requested_at__isnull=False).exists()


def test_resending_needs_the_pages_csrf_token(acme, receiver, commit):
    [failed] = seed(acme.subscription(receiver), 1, status=Delivery.Status.FAILED)
    client = signed_in(acme.user, enforce_csrf_checks=True)
    with commit():
        assert client.post(detail_url(failed) + "resend/").status_code == 403
        assert client.post(LOG + "resend/", {"resend": "failed"}).status_code == 403
    page = client.get(detail_url(failed)).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    with commit():
        response = client.post(detail_url(failed) + "resend/", {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert len(receiver.requests) == 1


def test_the_log_and_its_pages_are_behind_the_portals_door(client, receiver):
    [delivery] = seed(SubscriptionFactory(scope="someone"), 1)
    for url in (LOG, detail_url(delivery), LOG + "progress/"):
        response = client.get(url)
        assert response.status_code == 302 and "login" in response["Location"]
    assert urlsplit(client.post(detail_url(delivery) + "resend/")["Location"]).path != ""
    assert not Delivery.objects.filter(resend_requested_at__isnull=False).exists()


#: Every request the engine starts, with whether a transaction was open at the time.
sends_checked = test_no_http_in_transactions.requests_made


@pytest.mark.django_db(transaction=True)
def test_resend_and_recover_send_only_after_the_requests_transaction(
    sends_checked, receiver, no_retries
):
    """Under ATOMIC_REQUESTS, as the example runs: the portal only records and enqueues."""
    acme = make_tenant("Acme")
    sub = acme.subscription(receiver)
    receiver.answer(Answer(500))
    webhooks.send_event("article.created", {"n": 1}, scope=acme.scope)
    delivery = Delivery.objects.get(subscription=sub)
    client = signed_in(acme.user)

    assert client.post(detail_url(delivery) + "resend/").status_code == 302
    Delivery.objects.update(status=Delivery.Status.FAILED)
    assert client.post(LOG + "resend/", {"resend": "failed"}).status_code == 302
    Delivery.objects.update(status=Delivery.Status.FAILED)
    since = (timezone.localtime() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    assert client.post(f"{PORTAL}{sub.pk}/recover/", {"since": since}).status_code == 302

    assert len(receiver.requests) == len(sends_checked) == 4
    assert not any(sends_checked), "an HTTP request started inside a transaction"


def test_a_state_no_webhook_can_be_in_reads_nothing_of_the_log(acme, acme_client, receiver):
    """ "Held" needs a disabled webhook: with none, the log is not scanned for it (a join on
    the webhook made PostgreSQL read every delivery: 8 s at 2 million)."""
    seed(acme.subscription(receiver), 3, status=Delivery.Status.PENDING)
    with CaptureQueriesContext(connection) as captured:
        assert shown(acme_client.get(LOG + "?state=held")) == []
    assert not [q for q in captured if '"webhooks_delivery"' in q["sql"]]
    Subscription.objects.filter(scope=acme.scope).update(is_active=False)
    assert len(shown(acme_client.get(LOG + "?state=held"))) == 3


def test_a_customer_with_many_webhooks_gets_a_bounded_filter_and_no_list_of_their_ids(
    acme, globex, acme_client, receiver
):
    """Past ``WEBHOOKS_LISTED`` webhooks, the filter lists that many and the log keeps to the
    customer's webhooks by its scope, not by an ``IN`` list of every id (10,000 of them
    with every page: 700 ms at 10M attempts); an unlisted one is still filtered on."""
    listed = delivery_log.WEBHOOKS_LISTED
    subs = [acme.subscription(receiver, description=f"w{n}") for n in range(listed + 3)]
    # Beyond the first ``listed`` by id, in the database's order (MariaDB's uuid sorts
    # otherwise than Python's).
    by_id = list(Subscription.objects.filter(scope=acme.scope).order_by("pk"))
    unlisted, first, second = by_id[-1], by_id[0], by_id[1]  # never the same webhook
    [newest] = seed(unlisted, 1)
    [failed] = seed(first, 1, status=Delivery.Status.FAILED)
    [held] = seed(second, 1, status=Delivery.Status.PENDING)
    Subscription.objects.filter(pk=second.pk).update(is_active=False)
    seed(globex.subscription(receiver), 2)

    with CaptureQueriesContext(connection) as captured:
        response = acme_client.get(LOG)
    assert set(shown(response)) == {newest.pk, failed.pk, held.pk}
    choices = dict(response.context["form"].fields["webhook"].choices)
    assert len(choices) == listed + 1 and str(unlisted.pk) not in choices
    ids_sent = [sum(sub.pk.hex in q["sql"].replace("-", "") for sub in subs) for q in captured]
    assert max(ids_sent) < listed  # the page's own webhooks at most, never all of them

    response = acme_client.get(f"{LOG}?webhook={unlisted.pk}")
    assert shown(response) == [newest.pk]
    assert str(unlisted.pk) in dict(response.context["form"].fields["webhook"].choices)
    assert f'value="{unlisted.pk}" selected' in response.content.decode()
    assert shown(acme_client.get(LOG + "?state=failed")) == [failed.pk]
    assert shown(acme_client.get(LOG + "?state=held")) == [held.pk]
