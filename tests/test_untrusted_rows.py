"""Every stored value is untrusted (issue 18, holes 1, 2 and 7).

- A value coming in is never taken as ciphertext: ``fernet:…`` typed as a password is a
  password, encrypted like any other. Decryption happens only reading from the database.
- A row that cannot be decrypted (raw SQL, a key removed, another site's key) fails only
  its own webhook's deliveries, with the reason on the attempt; every other tenant's
  fan-out, sweeps, retries and pages go on.
- Whatever a row holds (written around the forms and the API), the engine records a
  failed attempt saying what is wrong, once, storable on every database, and moves on.
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from tests.api.conftest import make_tenant
from tests.factories import SubscriptionFactory
from tests.receiver import Answer
from webhooks import actions, dispatch, outbox, sweeper
from webhooks import delivery as http
from webhooks.encryption import PREFIX, UnreadableSecret, encrypt, reencrypt
from webhooks.models import Delivery, DeliveryAttempt, Subscription

pytestmark = pytest.mark.django_db

Kind = DeliveryAttempt.ErrorKind
SUBS = "/api/webhooks/subscriptions/"
ADMIN = "/admin/webhooks/subscription/"
GARBAGE = "fernet:garbage"
ENCRYPTED = ("secret", "previous_secret", "basic_auth_password", "headers")


def stored(sub) -> dict:
    """What the database holds in a subscription's encrypted columns."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(ENCRYPTED)} FROM webhooks_subscription WHERE id = %s",
            [Subscription._meta.pk.get_db_prep_value(sub.pk, connection)],
        )
        return dict(zip(ENCRYPTED, cursor.fetchone(), strict=True))


def write_raw(sub, **columns) -> None:
    """Write columns with plain SQL, around every model field and check."""
    assignments = ", ".join(f"{name} = %s" for name in columns)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE webhooks_subscription SET {assignments} WHERE id = %s",
            [*columns.values(), Subscription._meta.pk.get_db_prep_value(sub.pk, connection)],
        )


def basic_auth(received) -> str:
    scheme, _, token = received.headers["Authorization"].partition(" ")
    assert scheme == "Basic"
    return base64.b64decode(token).decode("latin-1")


@pytest.fixture
def superuser(db):
    return get_user_model().objects.create_superuser("root", "root@example.com", "pw")


@pytest.fixture
def admin_client(superuser):
    client = Client()
    client.force_login(superuser)
    return client


@pytest.fixture
def api_superuser(superuser):
    client = APIClient()
    client.force_authenticate(superuser)
    return client


def admin_form(sub, **overrides) -> dict:
    """The change form of ``sub`` as its page would post it back unchanged."""
    data = {
        "description": sub.description,
        "url": sub.url,
        "is_active": "on",
        "all_events": "on",
        "basic_auth_username": sub.basic_auth_username,
        "basic_auth_password": "",
        "headers": "",
        "sensitive_headers": "",
        "owner": "",
        "scope": sub.scope,
        "_save": "Save",
    }
    data.update(overrides)
    return data


# -- hole 1 and 2: nothing coming in is ever taken as ciphertext --------------------------


def test_a_password_that_looks_like_ciphertext_is_just_a_password(receiver, commit):
    tenant = make_tenant("Acme")
    response = tenant.client.post(
        SUBS,
        {
            "url": receiver.url,
            "all_events": True,
            "basic_auth_username": "u",
            "basic_auth_password": "fernet:poison",
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    sub = Subscription.objects.get(pk=response.json()["id"])
    raw = stored(sub)
    assert raw["basic_auth_password"].startswith(PREFIX)
    assert raw["basic_auth_password"] != "fernet:poison"  # encrypted like any other value
    assert sub.basic_auth_password == "fernet:poison"

    with commit():
        outbox.record_event("article.created", {"id": 1}, scope=tenant.scope)
    [received] = receiver.requests
    assert basic_auth(received) == "u:fernet:poison"


@pytest.mark.parametrize("how", ["save", "update", "create"])
def test_every_way_into_the_field_encrypts_whatever_it_is_given(how):
    sub = SubscriptionFactory()
    values = {"basic_auth_password": "fernet:poison", "previous_secret": "fernet:x"}
    if how == "save":
        for name, value in values.items():
            setattr(sub, name, value)
        sub.headers = "fernet:poison"  # a str is a JSON string, as in Django's JSONField
        sub.save()
    elif how == "update":
        Subscription.objects.filter(pk=sub.pk).update(headers="fernet:poison", **values)
    else:
        sub = Subscription.objects.create(
            url="https://example.com/", headers="fernet:poison", **values
        )
    raw = stored(sub)
    for name in ("previous_secret", "basic_auth_password", "headers"):
        assert raw[name].startswith(PREFIX) and len(raw[name]) > 50, name
    fresh = Subscription.objects.get(pk=sub.pk)
    assert fresh.basic_auth_password == "fernet:poison"
    assert fresh.previous_secret == "fernet:x"
    assert fresh.headers == "fernet:poison"  # refused when sent: not an object of headers


def test_the_fields_decrypt_only_what_they_read_from_the_database():
    sub = SubscriptionFactory(basic_auth_username="u", basic_auth_password="hunter2")
    ciphertext = stored(sub)["basic_auth_password"]
    password = Subscription._meta.get_field("basic_auth_password")
    headers = Subscription._meta.get_field("headers")
    assert password.to_python(ciphertext) == ciphertext
    assert password.clean(ciphertext, sub) == ciphertext
    with pytest.raises(Exception, match="valid JSON"):
        headers.to_python(ciphertext)
    assert headers.to_python('{"X-Team": "a"}') == {"X-Team": "a"}  # fixtures: JSON text


def test_another_rows_ciphertext_is_no_oracle(receiver, other_receiver, commit):
    """A tenant who got hold of another's ciphertext (a backup) and stores it as their own
    password has it sent as it is: the other tenant's password never comes out."""
    victim, thief = make_tenant("Acme"), make_tenant("Globex")
    theirs = victim.subscription(
        other_receiver, basic_auth_username="v", basic_auth_password="s3cret"
    )
    mine = thief.subscription(receiver, basic_auth_username="t", basic_auth_password="pw")
    stolen = stored(theirs)["basic_auth_password"]
    patched = thief.client.patch(
        SUBS + f"{mine.pk}/", {"basic_auth_password": stolen}, format="json"
    )
    assert patched.status_code == 200, patched.json()
    with commit():
        assert thief.client.post(SUBS + f"{mine.pk}/ping/").status_code == 202
    [received] = receiver.requests
    assert basic_auth(received) == f"t:{stolen}"
    assert "s3cret" not in json.dumps(received.headers)
    assert stored(mine)["basic_auth_password"] != stolen


def test_the_admin_form_takes_a_ciphertext_looking_password_as_a_password(admin_client):
    scope = make_tenant("Acme").scope
    sub = SubscriptionFactory(url="http://127.0.0.1:9/hook", all_events=True, scope=scope)
    response = admin_client.post(
        f"{ADMIN}{sub.pk}/change/",
        admin_form(sub, basic_auth_username="u", basic_auth_password="fernet:poison"),
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    sub.refresh_from_db()
    assert sub.basic_auth_password == "fernet:poison"
    assert stored(sub)["basic_auth_password"] != "fernet:poison"


def test_reencrypting_never_encrypts_twice_nor_decrypts_what_came_in():
    sub = SubscriptionFactory(
        basic_auth_username="u", basic_auth_password="fernet:typed", headers={"X-Team": "a"}
    )
    for _ in range(2):
        assert reencrypt(Subscription) == 1
    fresh = Subscription.objects.get(pk=sub.pk)
    assert (fresh.secret, fresh.basic_auth_password, fresh.headers) == (
        sub.secret,
        "fernet:typed",
        {"X-Team": "a"},
    )


# -- a row that cannot be decrypted fails only its own webhook ----------------------------


def make_undecryptable(sub) -> None:
    write_raw(sub, **{name: GARBAGE for name in ENCRYPTED})


def test_an_undecryptable_row_stops_only_its_own_webhook(
    receiver, other_receiver, commit, monkeypatch, caplog, admin_client, api_superuser
):
    acme, globex = make_tenant("Acme"), make_tenant("Globex")
    bad = acme.subscription(
        other_receiver,
        description="the broken one",
        basic_auth_username="u",
        basic_auth_password="pw",
        headers={"X-Team": "a"},
    )
    busy = [globex.subscription(receiver, description=f"busy {i}") for i in range(3)]
    make_undecryptable(bad)
    read = Subscription.objects.get(pk=bad.pk)  # reading it never raises
    assert all(isinstance(getattr(read, name), UnreadableSecret) for name in ENCRYPTED)

    # A worker's fan-out batch: Acme's event is the oldest waiting, Globex's follow.
    monkeypatch.setattr(dispatch, "_run_by_workers", lambda: True)
    outbox.record_event("article.created", {"n": 0}, scope=acme.scope)
    theirs = [
        outbox.record_event("article.created", {"n": n}, scope=globex.scope) for n in range(1, 5)
    ]
    receiver.answer(Answer(status=500))  # one of Globex's fails once: a retry to come
    with commit():
        dispatch.process_events([theirs[-1].pk])

    assert Delivery.objects.filter(subscription__in=busy).count() == 12
    assert len(receiver.requests) == 12 and not other_receiver.requests
    assert Delivery.objects.filter(subscription__in=busy, status="succeeded").count() == 11
    [broken] = Delivery.objects.filter(subscription=bad)
    [attempt] = broken.attempts.all()
    assert attempt.error_kind == Kind.UNDECRYPTABLE and not attempt.succeeded
    assert "cannot be decrypted with WEBHOOKS_ENCRYPTION_KEYS" in attempt.error_message
    assert "signing secret" in attempt.error_message
    assert attempt.request_headers == {}  # nothing was built, nothing leaks
    assert broken.status == Delivery.Status.PENDING and broken.lease_token is None
    assert broken.next_attempt_at > timezone.now()  # retried on the schedule
    assert f"Webhook {bad.pk}: nothing sent" in caplog.text

    # The sweeper: a lost event of each tenant, a resend, and the due retries.
    lost = [
        outbox.record_event("article.updated", {"n": 9}, scope=scope)
        for scope in (acme.scope, globex.scope)
    ]
    long_ago = timezone.now() - timedelta(hours=1)
    type(lost[0]).objects.filter(pk__in=[e.pk for e in lost]).update(occurred_at=long_ago)
    resent = Delivery.objects.filter(subscription=busy[0], status="succeeded").first()
    actions.resend([resent.pk])
    with commit():  # a minute on: past the first retry (5 s), before the second (5 min)
        report = sweeper.sweep_once(now=timezone.now() + timedelta(minutes=1))
    assert report.errors == 0 and report.events_fanned_out == 2
    assert len(receiver.requests) == 12 + 1 + 1 + 3  # the retry, the resend, the lost event
    assert Delivery.objects.filter(subscription__in=busy).exclude(status="succeeded").count() == 0
    assert not other_receiver.requests
    broken.refresh_from_db()
    assert broken.attempt_count == 2 and broken.status == Delivery.Status.PENDING
    assert broken.next_attempt_at > timezone.now() + timedelta(minutes=4)  # the schedule's next
    assert Delivery.objects.filter(subscription=bad).count() == 2  # its lost event too
    kinds = DeliveryAttempt.objects.filter(delivery__subscription=bad).values_list(
        "error_kind", flat=True
    )
    assert set(kinds) == {Kind.UNDECRYPTABLE}

    # The pages: the superuser's lists, and the broken webhook's own.
    listed = admin_client.get(ADMIN)
    assert listed.status_code == 200 and "the broken one" in listed.content.decode()
    page = admin_client.get(f"{ADMIN}{bad.pk}/change/")
    assert page.status_code == 200
    assert "cannot be decrypted with WEBHOOKS_ENCRYPTION_KEYS" in page.content.decode()
    assert GARBAGE not in page.content.decode()
    assert admin_client.get(f"/admin/webhooks/delivery/{broken.pk}/change/").status_code == 200
    api_list = api_superuser.get(SUBS)
    assert api_list.status_code == 200
    assert str(bad.pk) in {row["id"] for row in api_list.json()["results"]}
    detail = acme.client.get(SUBS + f"{bad.pk}/")
    assert detail.status_code == 200 and detail.json()["headers"] == {}
    assert acme.client.get("/api/webhooks/deliveries/").status_code == 200
    assert stored(bad) == {name: GARBAGE for name in ENCRYPTED}  # nothing rewrote it


def test_an_undecryptable_row_is_kept_when_saved_and_repaired_by_new_secrets(
    receiver, commit, admin_client
):
    tenant = make_tenant("Acme")
    sub = tenant.subscription(receiver, basic_auth_username="u", basic_auth_password="pw")
    make_undecryptable(sub)

    # Saved without new secrets, by the API and the admin: they stay as stored.
    patched = tenant.client.patch(SUBS + f"{sub.pk}/", {"description": "x"}, format="json")
    assert patched.status_code == 200, patched.json()
    saved = admin_client.post(
        f"{ADMIN}{sub.pk}/change/", admin_form(Subscription.objects.get(pk=sub.pk))
    )
    assert saved.status_code == 302, saved.context["adminform"].form.errors
    assert stored(sub) == {name: GARBAGE for name in ENCRYPTED}

    # Repaired: a new signing secret, a new password and new headers.
    rotated = tenant.client.post(SUBS + f"{sub.pk}/rotate-secret/")
    assert rotated.status_code == 200
    assert rotated.json()["previous_secret_expires_at"] is None  # the old one cannot sign
    patched = tenant.client.patch(
        SUBS + f"{sub.pk}/",
        {"basic_auth_password": "new-pw", "headers": {"X-Team": "b"}},
        format="json",
    )
    assert patched.status_code == 200, patched.json()
    with commit():
        tenant.client.post(SUBS + f"{sub.pk}/ping/")
    [received] = receiver.requests
    assert basic_auth(received) == "u:new-pw" and received.headers["X-Team"] == "b"
    assert Delivery.objects.get().status == Delivery.Status.SUCCEEDED
    signature = received.headers["webhook-signature"]
    assert len(signature.split()) == 1  # signed by the new secret alone


def test_marking_headers_on_an_undecryptable_row_keeps_them_as_stored(receiver, admin_client):
    tenant = make_tenant("Acme")
    sub = tenant.subscription(
        receiver,
        basic_auth_username="u",
        basic_auth_password="pw",
        headers={"X-Partner": "p"},
        sensitive_headers=[],
    )
    make_undecryptable(sub)

    for names in (["X-Partner"], []):
        patched = tenant.client.patch(
            SUBS + f"{sub.pk}/", {"sensitive_headers": names}, format="json"
        )
        assert patched.status_code == 200, patched.json()
    saved = admin_client.post(
        f"{ADMIN}{sub.pk}/change/",
        admin_form(Subscription.objects.get(pk=sub.pk), sensitive_headers="X-Other"),
    )
    assert saved.status_code == 302, saved.context["adminform"].form.errors
    assert stored(sub) == {name: GARBAGE for name in ENCRYPTED}
    assert Subscription.objects.get(pk=sub.pk).sensitive_headers == ["X-Other"]


def test_a_value_that_decrypts_to_no_json_is_saved_back_still_encrypted():
    sub = SubscriptionFactory()
    ciphertext = encrypt('{"X-Team": "a", not json')
    write_raw(sub, headers=ciphertext)
    fresh = Subscription.objects.get(pk=sub.pk)
    assert isinstance(fresh.headers, UnreadableSecret)
    assert "X-Team" not in repr(fresh.headers) + str(fresh.headers)
    fresh.save()
    assert stored(sub)["headers"] == ciphertext


def test_rotating_in_the_admin_repairs_an_undecryptable_secret(admin_client):
    sub = SubscriptionFactory(url="http://127.0.0.1:9/hook", all_events=True)
    write_raw(sub, secret=GARBAGE)
    response = admin_client.post(f"{ADMIN}{sub.pk}/rotate-secret/")
    assert response.status_code == 302
    fresh = Subscription.objects.get(pk=sub.pk)
    assert fresh.secret.startswith("whsec_") and fresh.previous_secret == ""
    page = admin_client.get(response["Location"]).content.decode()
    assert "it alone signs now" in page


# -- any value in any stored field: a recorded failure of that webhook, nothing more -------

FUTURE = timezone.now() + timedelta(days=365)
SETTINGS, BLOCKED, UNDECRYPTABLE = Kind.INVALID_SETTINGS, Kind.BLOCKED_TARGET, Kind.UNDECRYPTABLE


def update(**values):
    """Through the model fields (so encrypted), around every form and serializer check."""
    return lambda sub: Subscription.objects.filter(pk=sub.pk).update(**values)


def raw(**columns):
    """Around the model fields too: what a script or a restore could leave."""
    return lambda sub: write_raw(sub, **columns)


HOSTILE = [
    # basic auth
    pytest.param(update(basic_auth_username="użytkownik"), SETTINGS, id="username-not-latin1"),
    pytest.param(update(basic_auth_password="pass€word"), SETTINGS, id="password-not-latin1"),
    pytest.param(update(basic_auth_username="u\r\nX-Evil: 1"), SETTINGS, id="username-crlf"),
    pytest.param(update(basic_auth_password="p\r\nX-Evil: 1"), SETTINGS, id="password-crlf"),
    pytest.param(update(basic_auth_username="u\x00"), SETTINGS, id="username-nul"),
    pytest.param(update(basic_auth_password="p\x00w"), SETTINGS, id="password-nul"),
    pytest.param(update(basic_auth_username="u:v"), SETTINGS, id="username-colon"),
    # extra headers
    pytest.param(update(headers={"X-Bad\x00": "v"}), SETTINGS, id="header-name-nul"),
    pytest.param(update(headers={"X-Bad": "v\x00"}), SETTINGS, id="header-value-nul"),
    pytest.param(update(headers={"X-Bad": "v\r\nX-Injected: 1"}), SETTINGS, id="header-value-crlf"),
    pytest.param(update(headers={"X-Bad\r\nX-Injected": "1"}), SETTINGS, id="header-name-crlf"),
    pytest.param(update(headers={"X-Bad": "v€"}), SETTINGS, id="header-value-not-latin1"),
    pytest.param(update(headers={"X-Bad": 5}), SETTINGS, id="header-value-number"),
    pytest.param(update(headers={"X-Bad": None}), SETTINGS, id="header-value-null"),
    pytest.param(update(headers={"X-Bad": {"a": ["b"]}}), SETTINGS, id="header-value-nested"),
    pytest.param(update(headers={"X-Bad": "v" * 100_000}), SETTINGS, id="header-value-huge"),
    pytest.param(update(headers={"X" * 10_000: "v"}), SETTINGS, id="header-name-huge"),
    pytest.param(update(headers={"Host": "internal.example"}), SETTINGS, id="header-reserved"),
    pytest.param(update(headers={f"X-{n}": "v" for n in range(100)}), SETTINGS, id="headers-many"),
    pytest.param(update(headers=["X-Bad", "v"]), SETTINGS, id="headers-a-list"),
    pytest.param(update(headers="X-Bad: v"), SETTINGS, id="headers-a-string"),
    pytest.param(update(headers=7), SETTINGS, id="headers-a-number"),
    pytest.param(raw(headers="{not json"), SETTINGS, id="headers-not-json-in-clear"),
    pytest.param(
        lambda sub: write_raw(sub, headers=encrypt("{not json")),
        SETTINGS,
        id="headers-not-json-encrypted",
    ),
    pytest.param(raw(headers='{"X-Bad": "\\u0000"}'), SETTINGS, id="headers-nul-in-clear"),
    pytest.param(raw(headers=GARBAGE), UNDECRYPTABLE, id="headers-undecryptable"),
    # secret headers
    pytest.param(update(sensitive_headers="X-Team"), SETTINGS, id="sensitive-a-string"),
    pytest.param(update(sensitive_headers=5), SETTINGS, id="sensitive-a-number"),
    pytest.param(update(sensitive_headers={"X-Team": True}), SETTINGS, id="sensitive-an-object"),
    pytest.param(update(sensitive_headers=[1, None]), SETTINGS, id="sensitive-not-names"),
    # signing secrets
    pytest.param(update(secret="not-a-secret"), SETTINGS, id="secret-no-prefix"),
    pytest.param(update(secret="whsec_!!!!"), SETTINGS, id="secret-not-base64"),
    pytest.param(update(secret="whsec_c2hvcnQ="), SETTINGS, id="secret-too-short"),
    pytest.param(update(secret=""), SETTINGS, id="secret-empty"),
    pytest.param(update(secret="whsec_\x00\r\n"), SETTINGS, id="secret-control-characters"),
    pytest.param(raw(secret="whsec_in-clear-and-wrong"), SETTINGS, id="secret-in-clear-wrong"),
    pytest.param(raw(secret=GARBAGE), UNDECRYPTABLE, id="secret-undecryptable"),
    pytest.param(
        update(previous_secret="garbage", previous_secret_expires_at=FUTURE),
        SETTINGS,
        id="previous-secret-garbage",
    ),
    pytest.param(
        lambda sub: (
            raw(previous_secret=GARBAGE)(sub),
            update(previous_secret_expires_at=FUTURE)(sub),
        ),
        UNDECRYPTABLE,
        id="previous-secret-undecryptable",
    ),
    # the URL
    pytest.param(update(url="not a url"), SETTINGS, id="url-not-a-url"),
    pytest.param(update(url="http://exa mple.com/hook"), SETTINGS, id="url-space"),
    pytest.param(update(url="http://example.com/\r\nX-Evil: 1"), SETTINGS, id="url-crlf"),
    pytest.param(update(url="http://example.com/\x00"), SETTINGS, id="url-nul"),
    pytest.param(update(url=""), SETTINGS, id="url-empty"),
    pytest.param(update(url="ftp://example.com/hook"), SETTINGS, id="url-ftp"),
    pytest.param(update(url="http://[::1/hook"), SETTINGS, id="url-broken-ipv6"),
    pytest.param(update(url="http://example.com:99999/"), SETTINGS, id="url-port-out-of-range"),
    pytest.param(update(url="http:///hook"), SETTINGS, id="url-no-host"),
    pytest.param(update(url="http://user:pw@example.com/"), SETTINGS, id="url-credentials"),
    pytest.param(update(url="http://example.com/" + "x" * 3000), SETTINGS, id="url-huge"),
    pytest.param(update(url="http://10.0.0.1/hook"), BLOCKED, id="url-private-address"),
    pytest.param(update(url="http://169.254.169.254/latest/"), BLOCKED, id="url-metadata"),
    # all at once
    pytest.param(
        raw(**{name: GARBAGE for name in ENCRYPTED}), UNDECRYPTABLE, id="all-undecryptable"
    ),
]


def strings(value):
    """Every string in a JSON-like value, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


@pytest.mark.usefixtures("no_plan_gate")
@pytest.mark.parametrize(("spoil", "kind"), HOSTILE)
def test_a_hostile_stored_value_fails_only_its_own_webhook_once(
    spoil, kind, receiver, other_receiver, commit, admin_client, api_superuser
):
    good = SubscriptionFactory(url=receiver.url, all_events=True, scope="t", description="good")
    bad = SubscriptionFactory(
        url=other_receiver.url,
        all_events=True,
        scope="t",
        description="bad",
        basic_auth_username="u",
        basic_auth_password="pw",
        headers={"X-Team": "a"},
    )
    try:
        with transaction.atomic():
            spoil(bad)
    except DatabaseError as exc:
        pytest.skip(f"{connection.vendor} refuses this value, so no row can hold it: {exc}")

    # One batch: both webhooks' deliveries of two events.
    events = [outbox.record_event("article.created", {"n": n}, scope="t") for n in range(2)]
    with commit():
        dispatch.process_events([e.pk for e in events])

    assert len(receiver.requests) == 2
    assert set(Delivery.objects.filter(subscription=good).values_list("status", flat=True)) == {
        "succeeded"
    }
    assert not other_receiver.requests  # nothing is sent with what cannot be checked
    broken = list(Delivery.objects.filter(subscription=bad))
    assert len(broken) == 2
    for delivery in broken:
        [attempt] = delivery.attempts.all()  # recorded once: not left to an expiring lease
        assert attempt.error_kind == kind, attempt.error_message
        assert attempt.error_message and not attempt.succeeded
        assert delivery.attempt_count == 1 and delivery.lease_token is None
        assert delivery.status == Delivery.Status.PENDING  # retried on the schedule
        assert delivery.last_error
    for attempt in DeliveryAttempt.objects.all():
        stored_text = [
            attempt.request_url,
            attempt.request_headers,
            attempt.response_headers,
            attempt.response_body,
            attempt.error_message,
        ]
        assert not any("\x00" in text for text in strings(stored_text))
        assert len(attempt.request_url) <= 2000

    # The sweeper: nothing is due before the retry; after it, one more attempt each.
    with commit():
        assert sweeper.sweep_once().errors == 0
    assert DeliveryAttempt.objects.filter(delivery__subscription=bad).count() == 2
    with commit():  # past the first retry (5 s), before the second (5 min)
        sweeper.sweep_once(now=timezone.now() + timedelta(minutes=1))
    assert DeliveryAttempt.objects.filter(delivery__subscription=bad).count() == 4
    assert len(receiver.requests) == 2 and not other_receiver.requests

    # The pages.
    assert admin_client.get(ADMIN).status_code == 200
    assert admin_client.get(f"{ADMIN}{bad.pk}/change/").status_code == 200
    assert admin_client.get(f"/admin/webhooks/delivery/{broken[0].pk}/change/").status_code == 200
    assert admin_client.get("/admin/webhooks/delivery/").status_code == 200
    assert api_superuser.get(SUBS).status_code == 200
    assert api_superuser.get(SUBS + f"{bad.pk}/").status_code == 200
    assert api_superuser.get(f"/api/webhooks/deliveries/{broken[0].pk}/").status_code == 200


def test_post_never_raises_on_credentials_it_cannot_encode(receiver):
    request = http.OutgoingRequest(receiver.url, {}, b"{}", auth=("u", "pass€word"))
    outcome = http.post(request)
    assert outcome.error_kind == Kind.INVALID_SETTINGS and not receiver.requests
    assert "€" not in outcome.error_message  # never a character of the secret


def test_unreadable_secret_markings_hide_every_header_value():
    sub = SubscriptionFactory(headers={"X-Team": "payments"})
    Subscription.objects.filter(pk=sub.pk).update(sensitive_headers="X-Other")
    fresh = Subscription.objects.get(pk=sub.pk)
    assert fresh.sensitive_header_names() == ["X-Team"]  # unsure which are secret: all are
