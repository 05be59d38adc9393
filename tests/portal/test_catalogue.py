"""The event catalogue: every type a customer can subscribe to, grouped by category, with
its description, example and schema (escaped), an anchor and a page of its own, and a
filter that works without JavaScript."""

from __future__ import annotations

import html as htmllib
import json
import re

import pytest

from tests.api.conftest import make_tenant
from tests.portal.helpers import PORTAL, signed_in
from webhooks.models import EventType

pytestmark = pytest.mark.django_db

CATALOGUE = f"{PORTAL}events/"


def visible_types(html: str) -> list[str]:
    """Names of the type entries not hidden on the page, in order."""
    return re.findall(r'<article class="whp-type" id="event-([^"]+)"[^>]*?(?<!hidden)>', html)


def categories(html: str) -> list[str]:
    found = re.findall(r'<h2 id="category-\d+-heading">([^<]+)</h2>', html)
    return [htmllib.unescape(category) for category in found]


def test_every_subscribable_type_by_category_with_description_example_and_schema(acme):
    EventType.objects.filter(name="article.created").update(
        schema={"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}}}
    )
    EventType.objects.filter(name="article.deleted").update(is_active=False)
    page = signed_in(acme.user).get(CATALOGUE)
    html = page.content.decode()
    assert page.status_code == 200

    names = visible_types(html)
    subscribable = set(
        EventType.objects.filter(is_active=True)
        .exclude(name="webhook.test")
        .values_list("name", flat=True)
    )
    assert set(names) == subscribable
    assert "article.deleted" not in names and "webhook.test" not in names
    # Grouped by category, the notices about webhooks themselves last.
    found = categories(html)
    assert found[-1] == "Webhook operations"
    assert found[:-1] == sorted(found[:-1])
    # Each type: its description, its example and schema pretty-printed, a link to its page.
    article = html.split('id="event-article.created"')[1].split("</article>")[0]
    created = EventType.objects.get(name="article.created")
    assert created.description and created.description in htmllib.unescape(article)
    example = json.dumps(created.example_payload, indent=2, ensure_ascii=False)
    assert example in htmllib.unescape(article)
    assert '"required": [\n    "id"\n  ]' in htmllib.unescape(article)
    assert f'href="{CATALOGUE}article.created/"' in article
    assert "No schema is published for this type." in html.split('id="event-user.updated"')[1]
    # The portal's nav has the catalogue, marked as the current page.
    assert f'<a href="{CATALOGUE}" aria-current="page">Event catalogue</a>' in html
    assert '<label for="whp-catalogue-q">Filter event types</label>' in html


def test_the_filter_works_without_javascript(acme):
    html = signed_in(acme.user).get(CATALOGUE, {"q": "ARTICLE upd"}).content.decode()
    assert visible_types(html) == ["article.updated"]
    assert "1 of" in html and "match “ARTICLE upd”" in html
    # The others are on the page, hidden, so the script can show them again as one types.
    assert 'id="event-article.created"' in html
    assert 'value="ARTICLE upd"' in html
    nothing = signed_in(acme.user).get(CATALOGUE, {"q": "zzz"}).content.decode()
    assert visible_types(nothing) == []
    assert re.search(r"data-whp-filter-none>No event type matches", nothing)


def test_text_from_the_database_is_escaped(acme):
    EventType.objects.create(
        name="evil.<script>",
        category="<img src=x onerror=alert(1)>",
        description="<script>alert('d')</script>",
        example_payload={"html": "<script>alert('e')</script>"},
        schema="</pre><script>alert('s')</script>",  # not even an object: shown as it is
    )
    html = signed_in(acme.user).get(CATALOGUE).content.decode()
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&#x27;d&#x27;)&lt;/script&gt;" in html


def test_a_type_has_a_page_of_its_own(acme):
    client = signed_in(acme.user)
    page = client.get(f"{CATALOGUE}article.created/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "<h1><code>article.created</code></h1>" in html
    assert f'href="{CATALOGUE}#event-article.created"' in html
    example = EventType.objects.get(name="article.created").example_payload
    assert json.dumps(example, indent=2, ensure_ascii=False) in htmllib.unescape(html)


def test_types_not_offered_have_no_page(acme):
    EventType.objects.filter(name="article.deleted").update(is_active=False)
    client = signed_in(acme.user)
    for name in ["article.deleted", "webhook.test", "no.such.type"]:
        assert client.get(f"{CATALOGUE}{name}/").status_code == 404


def test_the_catalogue_is_for_customers_only(client):
    assert client.get(CATALOGUE).status_code == 302  # to the login
    outsider = make_tenant("Acme")
    outsider.user.groups.clear()
    assert signed_in(outsider.user).get(CATALOGUE).status_code == 403
    assert signed_in(outsider.user).get(f"{CATALOGUE}article.created/").status_code == 403
