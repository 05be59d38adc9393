"""Extra headers holding credentials are write-only; what cannot be sent is refused."""

from __future__ import annotations

import pytest

from tests.api.conftest import API
from webhooks.models import DeliveryAttempt, Subscription

pytestmark = pytest.mark.django_db

SUBS = API + "subscriptions/"


def create(tenant, receiver, **fields):
    body = {"url": receiver.url, "all_events": True, **fields}
    return tenant.client.post(SUBS, body, format="json")


def test_headers_named_like_credentials_and_marked_ones_are_write_only(tenant_a, receiver):
    response = create(
        tenant_a,
        receiver,
        headers={"Authorization-Token": "t-1", "X-Team": "payments", "X-Partner": "p-2"},
        sensitive_headers=["X-Partner"],
    )
    assert response.status_code == 201, response.json()
    shown = response.json()["headers"]
    assert shown == {
        "Authorization-Token": "********",
        "X-Team": "payments",
        "X-Partner": "********",
    }
    sub_id = response.json()["id"]
    for body in (
        tenant_a.client.get(SUBS + f"{sub_id}/").json(),
        tenant_a.client.get(SUBS).json()["results"][0],
    ):
        assert "t-1" not in str(body) and "p-2" not in str(body)
    # The masked values sent back unchanged keep the secrets; a new value replaces one.
    response = tenant_a.client.patch(
        SUBS + f"{sub_id}/",
        {"headers": {**shown, "X-Team": "billing", "X-Partner": "p-3"}},
        format="json",
    )
    assert response.status_code == 200, response.json()
    sub = Subscription.objects.get(pk=sub_id)
    assert sub.headers == {"Authorization-Token": "t-1", "X-Team": "billing", "X-Partner": "p-3"}


def test_secret_header_values_are_redacted_in_the_attempt_log(tenant_a, receiver, commit):
    sub = tenant_a.subscription(receiver, headers={"X-Partner": "p-2"})
    Subscription.objects.filter(pk=sub.pk).update(sensitive_headers=["x-partner"])
    with commit():  # the ping is sent after the request's transaction commits
        tenant_a.client.post(SUBS + f"{sub.pk}/ping/")
    [request] = receiver.requests
    assert request.headers["X-Partner"] == "p-2"  # sent in clear to the receiver
    attempt = DeliveryAttempt.objects.get()
    assert attempt.request_headers["X-Partner"] == "[redacted]"


def test_a_mask_for_a_header_that_has_no_value_is_refused(tenant_a, receiver):
    response = create(tenant_a, receiver, headers={"X-Api-Key": "********"})
    assert response.status_code == 400
    assert "Give a value for the header “X-Api-Key”" in response.json()["headers"][0]


@pytest.mark.parametrize(
    "value, words",
    [
        ("caf\u00e9 \U0001f600", "outside Latin-1"),
        ("a\x00b", "control characters"),
        ("a\x07b", "control characters"),
        ("line\r\nX-Injected: 1", "control characters"),
    ],
    ids=["emoji", "nul", "bell", "crlf"],
)
def test_header_values_that_cannot_be_sent_are_refused(tenant_a, receiver, value, words):
    response = create(tenant_a, receiver, headers={"X-Team": value})
    assert response.status_code == 400, response.content
    message = response.json()["headers"][0]
    assert "X-Team" in message and words in message
    assert Subscription.objects.count() == 0


def test_latin1_header_values_are_fine(tenant_a, receiver):
    response = create(tenant_a, receiver, headers={"X-Team": "caf\u00e9\tbar"})
    assert response.status_code == 201, response.json()


@pytest.mark.parametrize(
    "field, value, words",
    [
        ("basic_auth_password", "zq\U0001f511xv", "outside Latin-1"),
        ("basic_auth_password", "zq\x00xv", "Null characters are not allowed"),
        ("basic_auth_username", "us\u20acr", "outside Latin-1"),
        ("basic_auth_username", "us\nr", "control characters"),
    ],
    ids=["password-emoji", "password-nul", "user-euro", "user-newline"],
)
def test_basic_auth_that_cannot_be_sent_is_refused(tenant_a, receiver, field, value, words):
    credentials = {"basic_auth_username": "user", "basic_auth_password": "pw", field: value}
    response = create(tenant_a, receiver, **credentials)
    assert response.status_code == 400, response.content
    message = response.json()[field][0]
    assert words in message
    if field == "basic_auth_password":  # the message never repeats the secret, nor a piece
        assert "zq" not in message and "xv" not in message and "\U0001f511" not in message
    assert Subscription.objects.count() == 0


def test_sensitive_headers_must_be_header_names(tenant_a, receiver):
    response = create(tenant_a, receiver, sensitive_headers=["not a header"])
    assert response.status_code == 400
    assert "not a valid header name" in response.json()["sensitive_headers"][0]


UNMARK_WORDS = "To stop treating the header “{}” as secret, enter its value again"


def marked_subscription(tenant, receiver):
    """A webhook with a header marked secret (X-Partner) and a plain one (X-Team)."""
    sub = tenant.subscription(receiver, headers={"X-Partner": "p-2", "X-Team": "payments"})
    Subscription.objects.filter(pk=sub.pk).update(sensitive_headers=["x-partner"])
    return sub


@pytest.mark.parametrize(
    "method, body, named",
    [
        ("patch", {"sensitive_headers": []}, "X-Partner"),
        (
            "patch",
            {"sensitive_headers": [], "headers": {"X-Partner": "********", "X-Team": "a"}},
            "X-Partner",
        ),
        ("patch", {"sensitive_headers": [], "headers": {"x-PARTNER": "********"}}, "x-PARTNER"),
        # The mask under one spelling, a new value under another: still the old value kept.
        (
            "patch",
            {"sensitive_headers": [], "headers": {"X-Partner": "********", "x-partner": "p-9"}},
            "X-Partner",
        ),
        ("patch", {"sensitive_headers": ["X-Team"]}, "X-Partner"),
        ("put", {"sensitive_headers": []}, "X-Partner"),
        (
            "put",
            {"sensitive_headers": [], "headers": {"X-Partner": "********", "X-Team": "a"}},
            "X-Partner",
        ),
    ],
    ids=[
        "patch-names-only",
        "patch-mask",
        "patch-other-case",
        "patch-two-spellings",
        "patch-other-name-marked",
        "put-names-only",
        "put-mask",
    ],
)
def test_unmarking_a_secret_header_without_its_value_is_refused(
    tenant_a, receiver, method, body, named
):
    sub = marked_subscription(tenant_a, receiver)
    if method == "put":
        body = {"url": receiver.url, "all_events": True, **body}
    response = getattr(tenant_a.client, method)(SUBS + f"{sub.pk}/", body, format="json")
    assert response.status_code == 400, response.json()
    [message] = response.json()["sensitive_headers"]
    assert message.startswith(UNMARK_WORDS.format(named))
    assert "p-2" not in response.content.decode()
    # Nothing was changed, and the value still reads as the mask.
    sub.refresh_from_db()
    assert sub.headers == {"X-Partner": "p-2", "X-Team": "payments"}
    assert sub.sensitive_headers == ["x-partner"]
    read = tenant_a.client.get(SUBS + f"{sub.pk}/").json()
    assert read["headers"] == {"X-Partner": "********", "X-Team": "payments"}


@pytest.mark.parametrize(
    "headers, readable",
    [
        ({"X-Partner": "p-public", "X-Team": "********"}, {"X-Partner": "p-public"}),
        ({"x-partner": "p-public"}, {"x-partner": "p-public"}),
        ({"X-Team": "payments"}, {}),  # the secret header removed with its marking
    ],
    ids=["new-value", "new-value-other-case", "header-removed"],
)
def test_a_secret_header_is_unmarked_together_with_a_new_value(
    tenant_a, receiver, headers, readable
):
    sub = marked_subscription(tenant_a, receiver)
    response = tenant_a.client.patch(
        SUBS + f"{sub.pk}/", {"sensitive_headers": [], "headers": headers}, format="json"
    )
    assert response.status_code == 200, response.json()
    shown = tenant_a.client.get(SUBS + f"{sub.pk}/").json()["headers"]
    assert "p-2" not in str(shown)
    assert readable.items() <= shown.items()


def test_headers_named_like_credentials_stay_secret_when_unmarked(tenant_a, receiver):
    sub = tenant_a.subscription(receiver, headers={"X-Api-Key": "k-1"})
    Subscription.objects.filter(pk=sub.pk).update(sensitive_headers=["X-Api-Key"])
    response = tenant_a.client.patch(SUBS + f"{sub.pk}/", {"sensitive_headers": []}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["headers"] == {"X-Api-Key": "********"}
