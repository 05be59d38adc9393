"""Reading the delivery log and the event history, filtering it, and resending."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.utils import timezone

from tests.api.conftest import API
from tests.receiver import Answer
from tests.testapp.models import Article
from webhooks import outbox
from webhooks.models import Delivery, Event

pytestmark = pytest.mark.django_db

DELIVERIES = API + "deliveries/"
EVENTS = API + "events/"


@pytest.fixture
def log(tenant_a, receiver, other_receiver, commit, settings):
    """Two webhooks of one tenant; 3 articles: 3 + 3 deliveries, those to ``other`` failed."""
    settings.WEBHOOKS_RETRY_SCHEDULE = []
    created = tenant_a.subscription(receiver, ["article.created"])
    everything = tenant_a.subscription(other_receiver, all_events=True)
    other_receiver.default = Answer(500, body="boom")
    with commit():
        for title in "abc":
            Article.objects.create(title=title, tenant=tenant_a.scope)
        Article.objects.filter(title="a").update(status="x")  # no event: a queryset update
        Article.objects.get(title="c").delete()
    return created, everything


def ids(response):
    assert response.status_code == 200, response.json()
    return {r["id"] for r in response.json()["results"]}


def test_list_and_filters(tenant_a, log):
    created, everything = log
    client = tenant_a.client
    all_ids = ids(client.get(DELIVERIES))
    assert len(all_ids) == 3 + 4  # article.deleted goes to the all-events webhook only

    to_created = ids(client.get(DELIVERIES, {"subscription": created.pk}))
    assert to_created == {str(d.pk) for d in created.deliveries.all()} and len(to_created) == 3
    failed = ids(client.get(DELIVERIES, {"status": "failed"}))
    assert failed == {str(d.pk) for d in everything.deliveries.all()}
    deleted = client.get(DELIVERIES, {"event_type": "article.deleted"}).json()["results"]
    assert [d["event_type"] for d in deleted] == ["article.deleted"]
    assert deleted[0]["subscription"] == str(everything.pk)

    oldest = Delivery.objects.order_by("created_at").first()
    Delivery.objects.filter(pk=oldest.pk).update(created_at=timezone.now() - timedelta(days=2))
    cutoff = (timezone.now() - timedelta(days=1)).isoformat()
    assert ids(client.get(DELIVERIES, {"created_before": cutoff})) == {str(oldest.pk)}
    assert ids(client.get(DELIVERIES, {"created_after": cutoff})) == all_ids - {str(oldest.pk)}

    assert client.get(DELIVERIES, {"status": "lost"}).status_code == 400
    assert client.get(DELIVERIES, {"subscription": "not-a-uuid"}).status_code == 400
    assert client.get(DELIVERIES, {"created_after": "yesterday"}).status_code == 400


def test_time_filters_take_any_iso_offset(tenant_a, log):
    # ISO 8601 allows offsets PostgreSQL does not (past ±15:59): they are turned into UTC.
    in_the_past = (timezone.now() - timedelta(hours=1)).astimezone(
        timezone.get_fixed_timezone(timedelta(hours=20, minutes=30))
    )
    assert (
        len(ids(tenant_a.client.get(DELIVERIES, {"created_after": in_the_past.isoformat()}))) == 7
    )
    assert ids(tenant_a.client.get(EVENTS, {"occurred_before": in_the_past.isoformat()})) == set()
    response = tenant_a.client.get(DELIVERIES, {"created_after": "0001-01-01T00:00:00+05:00"})
    assert response.status_code == 400
    assert "between the years 1 and 9999" in response.json()["created_after"][0]


def test_cursor_pagination_walks_every_delivery_once_newest_first(tenant_a, log):
    seen, url, params = [], DELIVERIES, {"page_size": 2}
    while url:
        body = tenant_a.client.get(url, params).json()
        assert "count" not in body  # a cursor page never counts the whole table
        seen += body["results"]
        url, params = body["next"], None
        if url:
            assert "cursor" in parse_qs(urlsplit(url).query)
    assert len(seen) == len({d["id"] for d in seen}) == 7
    created = [d["created_at"] for d in seen]
    assert created == sorted(created, reverse=True)


@pytest.mark.parametrize("url, stamp", [(DELIVERIES, "created_at"), (EVENTS, "occurred_at")])
def test_cursor_pages_never_repeat_or_skip_rows_with_the_same_time(tenant_a, log, url, stamp):
    # Rows written in one fan-out can share a timestamp to the microsecond: the pages must
    # still give each exactly once (the order among equals is the id's, not the planner's).
    model = Delivery if url == DELIVERIES else Event
    rows = model.objects.filter(
        **(
            {"subscription__scope": tenant_a.scope}
            if url == DELIVERIES
            else {"scope": tenant_a.scope}
        )
    )
    expected = {str(pk) for pk in rows.values_list("pk", flat=True)}
    rows.update(**{stamp: timezone.now()})
    for page_size in (1, 2, 3):
        seen, next_url, params = [], url, {"page_size": page_size}
        while next_url:
            body = tenant_a.client.get(next_url, params).json()
            seen += [r["id"] for r in body["results"]]
            next_url, params = body["next"], None
        assert sorted(seen) == sorted(expected), f"page_size={page_size}"


def test_detail_nests_every_attempt(tenant_a, log):
    _, everything = log
    delivery = everything.deliveries.filter(event__type="article.created").first()
    body = tenant_a.client.get(DELIVERIES + f"{delivery.pk}/").json()
    assert body["status"] == "failed" and body["attempt_count"] == 1
    assert body["webhook_id"] == delivery.webhook_id
    assert body["payload"] == delivery.event.data
    (attempt,) = body["attempts"]
    assert attempt["response_status_code"] == 500 and attempt["response_body"] == "boom"
    assert attempt["trigger"] == "automatic" and attempt["error_kind"] == "http_5xx"
    assert attempt["request_headers"]["webhook-id"] == delivery.webhook_id


def test_resend_is_a_manual_attempt_with_the_same_webhook_id(tenant_a, log, other_receiver, commit):
    _, everything = log
    delivery = everything.deliveries.filter(event__type="article.created").first()
    other_receiver.default = Answer(200)
    with commit():
        response = tenant_a.client.post(DELIVERIES + f"{delivery.pk}/resend/")
    assert response.status_code == 202
    assert response["Location"].endswith(f"/deliveries/{delivery.pk}/")
    body = tenant_a.client.get(response["Location"]).json()
    assert body["status"] == "succeeded" and body["attempt_count"] == 2
    assert [a["trigger"] for a in body["attempts"]] == ["automatic", "manual"]
    sent = [r for r in other_receiver.requests if r.headers["webhook-id"] == delivery.webhook_id]
    assert len(sent) == 2


def test_resending_a_delivery_being_sent_is_a_conflict(tenant_a, receiver, commit):
    sub = tenant_a.subscription(receiver)
    with commit():
        delivery = tenant_a.client.post(API + f"subscriptions/{sub.pk}/ping/").json()
    outbox.claim([delivery["id"]], due_only=False)  # a worker holds it
    response = tenant_a.client.post(DELIVERIES + f"{delivery['id']}/resend/")
    assert response.status_code == 409
    assert "being sent right now" in response.json()["detail"]
    assert len(receiver.requests) == 1


def test_events_show_what_happened_even_without_a_webhook(tenant_a, commit):
    with commit():
        Article.objects.create(title="lonely", tenant=tenant_a.scope)
        Article.objects.create(title="elsewhere", tenant="org:someone-else")
    body = tenant_a.client.get(EVENTS).json()
    (event,) = body["results"]
    assert event["type"] == "article.created" and event["data"]["title"] == "lonely"
    assert event["scope"] == tenant_a.scope and event["source_model"] == "testapp.article"
    assert not Delivery.objects.exists()

    detail = tenant_a.client.get(EVENTS + f"{event['id']}/").json()
    assert detail == event


def test_events_filter_by_type_and_time_and_page_by_cursor(tenant_a, commit):
    with commit():
        for title in "abcd":
            article = Article.objects.create(title=title, tenant=tenant_a.scope)
        article.delete()
    old = Event.objects.order_by("occurred_at").first()
    Event.objects.filter(pk=old.pk).update(occurred_at=timezone.now() - timedelta(days=2))
    client = tenant_a.client
    assert ids(client.get(EVENTS, {"type": "article.deleted"})) == {
        str(Event.objects.get(type="article.deleted").pk)
    }
    cutoff = (timezone.now() - timedelta(days=1)).isoformat()
    assert ids(client.get(EVENTS, {"occurred_before": cutoff})) == {str(old.pk)}
    assert len(ids(client.get(EVENTS, {"occurred_after": cutoff}))) == 4
    first = client.get(EVENTS, {"page_size": 3}).json()
    second = client.get(first["next"]).json()
    assert len(first["results"]) == 3 and len(second["results"]) == 2
    assert second["next"] is None


def test_event_types_list_and_retrieve_by_name(tenant_a):
    body = tenant_a.client.get(API + "event-types/").json()
    names = [t["name"] for t in body]
    assert "article.created" in names and "webhook.test" in names
    detail = tenant_a.client.get(API + "event-types/article.created/").json()
    assert detail == {
        "name": "article.created",
        "category": "Articles",
        "description": "An article was created.",
        "example_payload": {"id": 1},
        "schema": None,
    }
    assert tenant_a.client.get(API + "event-types/nope.nothing/").status_code == 404
    assert tenant_a.client.post(API + "event-types/", {"name": "x"}).status_code == 405


@pytest.mark.parametrize("path", ["subscriptions/", "deliveries/", "events/"])
def test_a_page_costs_the_same_queries_for_2_or_12_rows(tenant_a, receiver, path):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries():
        with CaptureQueriesContext(connection) as captured:
            assert tenant_a.client.get(API + path).status_code == 200
        return len(captured)

    def add(n):
        for _ in range(n):
            sub = tenant_a.subscription(receiver, ["article.created", "article.deleted"])
            tenant_a.client.post(API + f"subscriptions/{sub.pk}/ping/")

    add(2)
    few = queries()
    add(10)
    assert queries() == few
