"""Webhooks through the REST API: create, read, change, delete, and the three actions."""

from __future__ import annotations

import base64
import logging
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from tests.api.conftest import API
from tests.receiver import Answer
from tests.test_signing import independent_signature
from tests.testapp.models import Article
from webhooks.models import Delivery, Subscription

pytestmark = pytest.mark.django_db

SUBS = API + "subscriptions/"


def test_create_returns_the_secret_once_and_files_the_webhook_under_the_tenant(tenant_a, receiver):
    response = tenant_a.client.post(
        SUBS,
        {
            "url": receiver.url,
            "description": "orders",
            "event_types": ["article.created", "article.deleted"],
            "headers": {"X-Team": "payments"},
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    sub = Subscription.objects.get(pk=body["id"])
    assert body["secret"] == sub.secret and sub.secret.startswith("whsec_")
    assert body["event_types"] == ["article.created", "article.deleted"]
    assert body["scope"] == tenant_a.scope == sub.scope
    assert sub.owner == tenant_a.user
    assert sub.headers == {"X-Team": "payments"} and sub.description == "orders"

    for read in (
        tenant_a.client.get(SUBS + f"{sub.pk}/"),
        tenant_a.client.get(SUBS),
        tenant_a.client.patch(SUBS + f"{sub.pk}/", {"description": "x"}, format="json"),
    ):
        assert read.status_code == 200
        assert sub.secret not in read.content.decode() and "secret" not in read.json()


def test_the_basic_auth_password_is_write_only(tenant_a, receiver, caplog, commit):
    caplog.set_level(logging.DEBUG)
    password = "correct-horse-battery-staple"
    created = tenant_a.client.post(
        SUBS,
        {
            "url": receiver.url,
            "all_events": True,
            "basic_auth_username": "hook",
            "basic_auth_password": password,
        },
        format="json",
    )
    assert created.status_code == 201
    sub = Subscription.objects.get(pk=created.json()["id"])
    assert sub.basic_auth_password == password
    reads = [
        created,
        tenant_a.client.get(SUBS + f"{sub.pk}/"),
        tenant_a.client.get(SUBS),
        tenant_a.client.put(
            SUBS + f"{sub.pk}/",
            {"url": receiver.url, "all_events": True, "basic_auth_username": "hook"},
            format="json",
        ),
    ]
    with commit():
        ping = tenant_a.client.post(SUBS + f"{sub.pk}/ping/")
    reads += [ping, tenant_a.client.get(API + f"deliveries/{ping.json()['id']}/")]
    for read in reads:
        assert read.status_code < 300
        assert password not in read.content.decode()
        assert "basic_auth_password" not in read.json()
    assert created.json()["basic_auth_username"] == "hook"
    # A PUT without the password keeps it; the receiver really got it.
    assert Subscription.objects.get(pk=sub.pk).basic_auth_password == password
    assert receiver.requests[-1].headers["Authorization"].startswith("Basic ")
    assert password not in caplog.text and sub.secret not in caplog.text


def test_only_the_create_and_rotate_answers_ever_carry_a_signing_secret(tenant_a, receiver, commit):
    created = tenant_a.client.post(
        SUBS,
        {
            "url": receiver.url,
            "all_events": True,
            "basic_auth_username": "hook",
            "basic_auth_password": "pw-secret-1",
            "headers": {"X-Partner": "p-secret-2"},
            "sensitive_headers": ["X-Partner"],
        },
        format="json",
    )
    sub_id = created.json()["id"]
    first = created.json()["secret"]
    rotated = tenant_a.client.post(SUBS + f"{sub_id}/rotate-secret/").json()["secret"]
    detail = SUBS + f"{sub_id}/"
    reads = [
        tenant_a.client.get(detail),
        tenant_a.client.get(SUBS),
        tenant_a.client.patch(detail, {"description": "x"}, format="json"),
        tenant_a.client.put(detail, {"url": receiver.url, "all_events": True}, format="json"),
        tenant_a.client.patch(detail, {"url": "ftp://example.com/"}, format="json"),  # a 400
    ]
    with commit():
        ping = tenant_a.client.post(detail + "ping/")
    reads += [
        ping,
        tenant_a.client.get(API + f"deliveries/{ping.json()['id']}/"),
        tenant_a.client.get(API + "deliveries/"),
        tenant_a.client.get(API + "events/"),
    ]
    assert receiver.requests  # the secrets were in use: the ping was signed and sent
    basic = base64.b64encode(b"hook:pw-secret-1").decode()
    for read in reads:
        text = read.content.decode()
        for secret in (first, rotated, "pw-secret-1", basic, "p-secret-2"):
            assert secret not in text, (read.request["PATH_INFO"], secret)


@pytest.mark.parametrize(
    "url,words",
    [
        ("ftp://example.com/hook", "“ftp:” URLs are not accepted"),
        ("javascript:alert(1)", "“javascript:” URLs are not accepted"),
        ("https://user:pw@example.com/hook", "Remove the user name and password"),
        ("http://10.0.0.8/hook", "a private network address"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("https://no-such-host.invalid/hook", "could not be resolved"),
        ("http://exa mple.com/hook", "Enter a valid URL"),
    ],
)
def test_a_refused_url_says_why_and_nothing_is_written(tenant_a, settings, url, words):
    settings.WEBHOOKS_ALLOWED_NETWORKS = []
    response = tenant_a.client.post(SUBS, {"url": url, "all_events": True}, format="json")
    assert response.status_code == 400
    assert words in " ".join(response.json()["url"])
    assert Subscription.objects.count() == 0


def test_a_host_whose_name_servers_never_answer_is_refused_in_bounded_time(
    tenant_a, settings, monkeypatch, name_servers_never_answer
):
    """Saving waits for the name a few seconds at most (the system's resolver alone may
    retry for 30 s and more while the person waits), and says what happened."""
    monkeypatch.setattr("webhooks.security.VALIDATION_RESOLVE_SECONDS", 0.5)
    settings.WEBHOOKS_ALLOWED_NETWORKS = []
    started = time.monotonic()
    response = tenant_a.client.post(
        SUBS,
        {"url": f"https://{name_servers_never_answer}/hook", "all_events": True},
        format="json",
    )
    assert time.monotonic() - started < 10  # the lookup is held for 30 s
    assert response.status_code == 400
    assert response.json()["url"] == [
        "The host name “slow-dns.example” did not resolve within 0.5 seconds: its name "
        "servers did not answer. Try again in a moment, and check the name for typos."
    ]
    assert Subscription.objects.count() == 0


def test_an_unknown_event_type_lists_the_valid_names(tenant_a, receiver):
    response = tenant_a.client.post(
        SUBS, {"url": receiver.url, "event_types": ["article.created", "nope"]}, format="json"
    )
    assert response.status_code == 400
    (message,) = response.json()["event_types"]
    assert "Unknown event type: nope." in message
    assert "article.created" in message and "article.deleted" in message
    assert Subscription.objects.count() == 0


def test_reserved_headers_are_named(tenant_a, receiver):
    response = tenant_a.client.post(
        SUBS,
        {"url": receiver.url, "all_events": True, "headers": {"Webhook-Signature": "x"}},
        format="json",
    )
    assert response.status_code == 400
    (message,) = response.json()["headers"]
    assert "“Webhook-Signature” is set by the webhook system" in message
    assert Subscription.objects.count() == 0


def test_a_webhook_needs_event_types_or_all_events(tenant_a, receiver):
    response = tenant_a.client.post(SUBS, {"url": receiver.url}, format="json")
    assert response.status_code == 400
    assert "Choose at least one event type" in response.json()["event_types"][0]
    sub = tenant_a.subscription(receiver, ["article.created"])
    response = tenant_a.client.patch(
        SUBS + f"{sub.pk}/", {"event_types": [], "all_events": False}, format="json"
    )
    assert response.status_code == 400
    assert list(sub.event_types.values_list("name", flat=True)) == ["article.created"]


def test_a_password_needs_a_user_name(tenant_a, receiver):
    response = tenant_a.client.post(
        SUBS,
        {"url": receiver.url, "all_events": True, "basic_auth_password": "pw"},
        format="json",
    )
    assert response.status_code == 400
    assert "Give a user name" in response.json()["basic_auth_username"][0]
    assert Subscription.objects.count() == 0


def test_a_failed_update_changes_nothing(tenant_a, receiver):
    sub = tenant_a.subscription(receiver, ["article.created"], description="before")
    before = Subscription.objects.filter(pk=sub.pk).values().get()
    response = tenant_a.client.put(
        SUBS + f"{sub.pk}/",
        {"url": "http://10.0.0.1/", "description": "after", "event_types": ["article.deleted"]},
        format="json",
    )
    assert response.status_code == 400
    assert Subscription.objects.filter(pk=sub.pk).values().get() == before
    assert list(sub.event_types.values_list("name", flat=True)) == ["article.created"]


def test_update_partial_update_and_delete(tenant_a, receiver, other_receiver):
    sub = tenant_a.subscription(receiver, ["article.created"])
    response = tenant_a.client.put(
        SUBS + f"{sub.pk}/",
        {"url": other_receiver.url, "event_types": ["article.deleted"], "description": "new"},
        format="json",
    )
    assert response.status_code == 200, response.json()
    sub.refresh_from_db()
    assert sub.url == other_receiver.url and sub.description == "new"
    assert list(sub.event_types.values_list("name", flat=True)) == ["article.deleted"]

    response = tenant_a.client.patch(SUBS + f"{sub.pk}/", {"is_active": False}, format="json")
    assert response.json()["is_active"] is False
    assert response.json()["event_types"] == ["article.deleted"]

    assert tenant_a.client.delete(SUBS + f"{sub.pk}/").status_code == 204
    assert not Subscription.objects.filter(pk=sub.pk).exists()


def test_switching_a_disabled_webhook_back_on_clears_its_failure_streak(tenant_a, receiver):
    sub = tenant_a.subscription(receiver)
    Subscription.objects.filter(pk=sub.pk).update(
        is_active=False,
        disabled_reason="410 Gone",
        disabled_at=timezone.now(),
        consecutive_failures=9,
        failing_since=timezone.now() - timedelta(days=9),
    )
    body = tenant_a.client.patch(SUBS + f"{sub.pk}/", {"is_active": True}, format="json").json()
    assert body["is_active"] is True and body["disabled_reason"] == ""
    sub.refresh_from_db()
    assert sub.consecutive_failures == 0 and sub.failing_since is None


def test_list_shows_the_tenants_webhooks(tenant_a, receiver):
    subs = [tenant_a.subscription(receiver) for _ in range(3)]
    body = tenant_a.client.get(SUBS).json()
    assert body["count"] == 3
    assert {r["id"] for r in body["results"]} == {str(s.pk) for s in subs}


def test_a_tenant_user_cannot_choose_another_scope(tenant_a, receiver):
    response = tenant_a.client.post(
        SUBS, {"url": receiver.url, "all_events": True, "scope": "org:999"}, format="json"
    )
    assert response.status_code == 400 and "scope" in response.json()
    assert Subscription.objects.count() == 0


def test_a_user_who_sees_every_tenant_may_choose_the_scope(superuser_client, receiver):
    response = superuser_client.post(
        SUBS, {"url": receiver.url, "all_events": True, "scope": "org:7"}, format="json"
    )
    assert response.status_code == 201
    assert Subscription.objects.get().scope == "org:7"
    response = superuser_client.post(SUBS, {"url": receiver.url, "all_events": True}, format="json")
    assert Subscription.objects.get(pk=response.json()["id"]).scope == ""
    assert superuser_client.get(SUBS).json()["count"] == 2


def test_ping_sends_a_test_event_after_the_request_and_says_where_to_look(
    tenant_a, receiver, commit
):
    sub = tenant_a.subscription(receiver, ["article.created"])
    with commit():
        response = tenant_a.client.post(SUBS + f"{sub.pk}/ping/")
        assert receiver.requests == []  # nothing is sent while the request is open
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "pending" and body["attempts"] == []
    assert response["Location"].endswith(f"/deliveries/{body['id']}/")
    assert receiver.types() == ["webhook.test"]
    body = tenant_a.client.get(response["Location"]).json()
    assert body["status"] == "succeeded" and body["event_type"] == "webhook.test"
    assert body["subscription"] == str(sub.pk)
    (attempt,) = body["attempts"]
    assert attempt["response_status_code"] == 200 and attempt["trigger"] == "manual"
    assert receiver.requests[0].headers["webhook-id"] == body["webhook_id"]


def test_ping_can_send_the_example_of_a_type_the_webhook_receives(tenant_a, receiver, commit):
    from webhooks.models import EventType

    sub = tenant_a.subscription(receiver, ["article.created"])
    with commit():
        response = tenant_a.client.post(
            SUBS + f"{sub.pk}/ping/", {"event_type": "article.created"}, format="json"
        )
    assert response.status_code == 202
    assert receiver.types() == ["article.created"]
    example = EventType.objects.get(name="article.created").example_payload
    assert receiver.requests[0].json()["data"] == example
    refused = tenant_a.client.post(
        SUBS + f"{sub.pk}/ping/", {"event_type": "article.deleted"}, format="json"
    )
    assert refused.status_code == 400
    assert refused.json() == {
        "event_type": ["This webhook does not receive 'article.deleted' events."]
    }
    assert len(receiver.requests) == 1


def test_rotate_secret_returns_the_new_secret_once_and_the_old_keeps_signing(
    tenant_a, receiver, commit
):
    sub = tenant_a.subscription(receiver)
    old = sub.secret
    response = tenant_a.client.post(SUBS + f"{sub.pk}/rotate-secret/")
    assert response.status_code == 200
    new = response.json()["secret"]
    sub.refresh_from_db()
    assert new == sub.secret != old and sub.previous_secret == old
    assert sub.previous_secret_expires_at > timezone.now() + timedelta(hours=23)
    assert new not in tenant_a.client.get(SUBS + f"{sub.pk}/").content.decode()

    with commit():
        tenant_a.client.post(SUBS + f"{sub.pk}/ping/")
    request = receiver.requests[-1]
    msg_id, ts = request.headers["webhook-id"], int(request.headers["webhook-timestamp"])
    assert request.headers["webhook-signature"].split(" ") == [
        independent_signature(new, msg_id, ts, request.body),
        independent_signature(old, msg_id, ts, request.body),
    ]


def test_rotate_secret_with_a_chosen_overlap(tenant_a, receiver):
    sub = tenant_a.subscription(receiver)
    url = SUBS + f"{sub.pk}/rotate-secret/"
    response = tenant_a.client.post(url, {"overlap": 3600}, format="json")
    assert response.status_code == 200
    sub.refresh_from_db()
    left = sub.previous_secret_expires_at - timezone.now()
    assert timedelta(minutes=59) < left <= timedelta(hours=1)
    body = tenant_a.client.post(url, {"overlap": 0}, format="json").json()
    assert body["previous_secret_expires_at"] is None
    sub.refresh_from_db()
    assert sub.signing_secrets() == [sub.secret]
    refused = tenant_a.client.post(url, {"overlap": 10**9}, format="json")
    assert refused.status_code == 400
    assert refused.json() == {
        "overlap": [
            "Choose how long the old secret keeps signing: none, 1 hour, 24 hours or 7 days."
        ]
    }
    assert Subscription.objects.get(pk=sub.pk).secret == sub.secret


def test_recover_resends_the_failed_deliveries_of_the_window(tenant_a, receiver, commit, settings):
    settings.WEBHOOKS_RETRY_SCHEDULE = []
    sub = tenant_a.subscription(receiver, ["article.created"])
    receiver.default = Answer(500)
    with commit():
        for title in "abc":
            Article.objects.create(title=title, tenant=tenant_a.scope)
    old = Delivery.objects.order_by("created_at").first()
    Delivery.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=3))
    receiver.default = Answer(200)
    since = (timezone.now() - timedelta(days=1)).isoformat()
    with commit():
        response = tenant_a.client.post(
            SUBS + f"{sub.pk}/recover/", {"since": since}, format="json"
        )
    assert response.status_code == 202 and response.json() == {"queued": 2}
    assert Delivery.objects.filter(status="succeeded").count() == 2
    assert Delivery.objects.get(pk=old.pk).status == "failed"

    until = (timezone.now() - timedelta(days=2)).isoformat()
    since = (timezone.now() - timedelta(days=4)).isoformat()
    with commit():
        response = tenant_a.client.post(
            SUBS + f"{sub.pk}/recover/", {"since": since, "until": until}, format="json"
        )
    assert response.json() == {"queued": 1}
    assert Delivery.objects.get(pk=old.pk).status == "succeeded"


def test_recover_needs_a_sensible_window(tenant_a, receiver):
    sub = tenant_a.subscription(receiver)
    url = SUBS + f"{sub.pk}/recover/"
    assert "since" in tenant_a.client.post(url, {}, format="json").json()
    now = timezone.now()
    window = {"since": now.isoformat(), "until": (now - timedelta(hours=1)).isoformat()}
    response = tenant_a.client.post(url, window, format="json")
    assert response.status_code == 400 and "later than since" in response.json()["until"][0]


def test_the_api_speaks_json(tenant_a, receiver):
    response = tenant_a.client.post(SUBS, {"url": receiver.url, "all_events": "true"})
    assert response.status_code == 415 and "Unsupported media type" in response.json()["detail"]
    assert Subscription.objects.count() == 0


def test_anonymous_requests_are_refused(db):
    response = APIClient().get(SUBS)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_session_authentication_works(tenant_a, receiver):
    tenant_a.subscription(receiver)
    client = APIClient()
    client.force_login(tenant_a.user)
    assert client.get(SUBS).json()["count"] == 1


def test_the_permission_classes_are_a_setting(tenant_a, receiver, settings):
    settings.WEBHOOKS_API_PERMISSION_CLASSES = ["rest_framework.permissions.IsAdminUser"]
    assert tenant_a.client.get(SUBS).status_code == 403
    tenant_a.user.is_staff = True
    tenant_a.user.save()
    assert tenant_a.client.get(SUBS).status_code == 200


def test_switching_a_webhook_off_records_who_when_and_why(tenant_a, receiver):
    sub = tenant_a.subscription(receiver)
    before = timezone.now()
    body = tenant_a.client.patch(SUBS + f"{sub.pk}/", {"is_active": False}, format="json").json()
    assert body["is_active"] is False
    assert body["disabled_reason"] == f"Switched off by {tenant_a.user} through the API."
    sub.refresh_from_db()
    assert sub.disabled_at is not None and sub.disabled_at >= before
    # Saying "off" again keeps the first record.
    tenant_a.client.patch(SUBS + f"{sub.pk}/", {"is_active": False}, format="json")
    sub2 = Subscription.objects.get(pk=sub.pk)
    assert sub2.disabled_at == sub.disabled_at


def test_a_tenant_at_its_webhook_limit_cannot_add_one_and_is_told_what_to_do(
    tenant_a, tenant_b, receiver, settings
):
    settings.WEBHOOKS_MAX_WEBHOOKS_PER_SCOPE = 3
    for _ in range(2):
        tenant_a.subscription(receiver)
    tenant_a.subscription(receiver, is_active=False)  # disabled ones count too
    response = tenant_a.client.post(
        SUBS, {"url": receiver.url + "?new", "all_events": True}, format="json"
    )
    assert response.status_code == 400
    [message] = response.json()["non_field_errors"]
    assert "already has 3 webhooks, and 3 is the most allowed" in message
    assert "Delete one it no longer needs" in message and "raise the limit" in message
    assert Subscription.objects.filter(scope=tenant_a.scope).count() == 3
    # Another tenant has its own allowance; one of tenant A's deleted makes room.
    created = tenant_b.client.post(
        SUBS, {"url": receiver.url + "?new", "all_events": True}, format="json"
    )
    assert created.status_code == 201
    Subscription.objects.filter(scope=tenant_a.scope).first().delete()
    again = tenant_a.client.post(
        SUBS, {"url": receiver.url + "?new", "all_events": True}, format="json"
    )
    assert again.status_code == 201


def test_webhooks_over_a_lowered_limit_keep_working(tenant_a, receiver, settings):
    subs = [tenant_a.subscription(receiver) for _ in range(3)]
    settings.WEBHOOKS_MAX_WEBHOOKS_PER_SCOPE = 2
    response = tenant_a.client.patch(
        SUBS + f"{subs[0].pk}/", {"description": "still mine"}, format="json"
    )
    assert response.status_code == 200
    assert tenant_a.client.post(SUBS + f"{subs[1].pk}/ping/").status_code == 202
    settings.WEBHOOKS_MAX_WEBHOOKS_PER_SCOPE = None  # no limit
    created = tenant_a.client.post(
        SUBS, {"url": receiver.url + "?new", "all_events": True}, format="json"
    )
    assert created.status_code == 201


def test_by_default_a_tenant_may_have_20_webhooks(tenant_a, receiver):
    for _ in range(20):
        tenant_a.subscription(receiver)
    response = tenant_a.client.post(SUBS, {"url": receiver.url, "all_events": True}, format="json")
    assert response.status_code == 400
    assert "20 is the most allowed" in response.json()["non_field_errors"][0]
