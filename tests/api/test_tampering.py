"""Input a client was not meant to craft: a changed cursor is a 400, not a server error."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from tests.api.conftest import API
from tests.testapp.models import Article

pytestmark = pytest.mark.django_db


def encode(raw: str) -> str:
    return base64.b64encode(raw.encode()).decode()


@pytest.fixture
def history(tenant_a, commit):
    with commit():
        for title in "abc":
            Article.objects.create(title=title, tenant=tenant_a.scope)


@pytest.mark.parametrize("endpoint", ["events/", "deliveries/"])
@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!!",
        encode("p=not-a-date"),
        encode("p=2026-13-45T99:99:99"),
        encode("o=abc&r=1&p=2026-01-01"),
        encode("p=" + "9" * 400),
        encode("p=\x00"),
    ],
    ids=["not-base64", "text", "impossible-date", "bad-offset", "huge", "nul"],
)
def test_a_tampered_cursor_is_a_400(tenant_a, history, endpoint, cursor):
    response = tenant_a.client.get(API + endpoint, {"cursor": cursor})
    assert response.status_code == 400, response.content
    assert "cursor" in response.json()


def test_a_cursor_the_api_gave_out_still_works(tenant_a, history):
    first = tenant_a.client.get(API + "events/", {"page_size": 1}).json()
    query = parse_qs(urlsplit(first["next"]).query)
    second = tenant_a.client.get(API + "events/?" + urlencode(query, doseq=True))
    assert second.status_code == 200
    assert second.json()["results"][0]["id"] != first["results"][0]["id"]
