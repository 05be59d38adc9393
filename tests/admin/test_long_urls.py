"""Webhook URLs in the lists: two webhooks differing only in port and path end are told
apart at a glance (the port and the path's end are never cut), and the whole URL is in
the title and the accessible name."""

import re

import pytest

from tests.admin.helpers import DELIVERIES_URL, seed
from tests.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db

URLS = [
    "http://demo-receiver.internal.example.com:8603/webhooks/acme/incoming/500",
    "http://demo-receiver.internal.example.com:8699/webhooks/acme/incoming/refused",
]


def shown_urls(html: str) -> list[dict]:
    found = []
    for match in re.finditer(
        r'<span class="wh-url" title="([^"]+)">(.*?</span>)</span></span>', html
    ):
        parts = dict(re.findall(r'<span class="wh-url-(\w+)"[^>]*>([^<]*)</span>', match.group(2)))
        found.append({"title": match.group(1), **parts})
    return found


@pytest.mark.parametrize("where", ["webhooks", "deliveries"])
def test_the_lists_keep_host_port_and_path_end_of_each_url(admin_client, where):
    subs = [SubscriptionFactory(url=url, description="", all_events=True) for url in URLS]
    for sub in subs:
        seed(sub, 1)
    page = "/admin/webhooks/subscription/" if where == "webhooks" else DELIVERIES_URL
    html = admin_client.get(page).content.decode()
    shown = shown_urls(html)
    assert sorted(s["title"] for s in shown) == sorted(URLS), shown  # each once
    for s in shown:
        port = "8603" if s["title"].endswith("/500") else "8699"
        assert s["host"] == "demo-receiver.internal.example.com"
        assert s["port"] == f":{port}"  # kept whole
        assert s["tail"] == ("/500" if port == "8603" else "/refused")  # kept whole
        assert s["path"] == "/webhooks/acme/incoming"  # the part that may be cut
        assert s["full"] == s["title"]  # the accessible name: the whole URL


def test_a_webhook_with_a_description_shows_its_url_too(admin_client):
    SubscriptionFactory(url=URLS[0], description="Grades sync", all_events=True)
    html = admin_client.get("/admin/webhooks/subscription/").content.decode()
    assert "Grades sync" in html and [s["title"] for s in shown_urls(html)] == [URLS[0]]
