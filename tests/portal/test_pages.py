"""The crawl that finds every portal page (tests/portal/pages.py), on a made-up site: what
it follows, what it never does, and its bounds. The browser test and the benchmark trust it
to cover pages merged after them."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from tests.portal.pages import MAX_PER_SHAPE, PORTAL, crawl, filter_variants, parse

SITE = "http://testserver"
HINTS = {
    "message_id": "msg_abc",
    "event_type": "article.created",
    "date": "2026-12-01",
    "datetime": "2026-12-01T10:00",
}

ROOT = f"""<nav><a href="{PORTAL}">Webhooks</a> <a href="{PORTAL}deliveries/">Deliveries</a>
<a href="/admin/">Admin</a> <a href="https://elsewhere.example{PORTAL}">Elsewhere</a>
<a href="/accounts/logout/">Sign out</a> <a href="{PORTAL}logout/">Log out</a>
<a href="{PORTAL}export.csv" download>Export</a></nav>
<form method="post" action="{PORTAL}delete/"><button>Delete</button></form>
<a href="{PORTAL}aaaaaaaa-0000-0000-0000-000000000001/#top">First</a>"""

LOG = """<form method="get" aria-label="Filter deliveries">
<select name="state"><option value="">Any</option><option value="failed">Failed</option>
<option value="succeeded" selected>Succeeded</option></select>
<input type="date" name="from_date"> <input name="message"> <input type="hidden" name="after">
</form>
<form method="post" id="resend"><button>Resend</button></form>
<input type="checkbox" name="delivery" value="1" form="resend">"""


def fake_site(pages: dict[str, str]):
    fetched = []

    def fetch(url):
        fetched.append(url)
        path = urlsplit(url).path
        if path.endswith(".json"):
            return 200, "application/json", "{}"
        return (200, "text/html", pages[path]) if path in pages else (404, "text/html", "")

    return fetch, fetched


def test_the_crawl_follows_portal_links_and_get_forms_and_nothing_else():
    webhook = f"{PORTAL}aaaaaaaa-0000-0000-0000-000000000001/"
    fetch, fetched = fake_site({PORTAL: ROOT, f"{PORTAL}deliveries/": LOG, webhook: ""})

    visited = crawl(fetch, SITE + PORTAL, HINTS)

    paths = {urlsplit(url).path for url in fetched}
    assert paths == {PORTAL, f"{PORTAL}deliveries/", webhook}
    assert all("#" not in url for url in fetched)
    queries = [dict(parse_qsl(urlsplit(v.url).query)) for v in visited if "deliveries" in v.url]
    # The filter form as it stands, then each filter set to something it can match.
    assert {"state": "succeeded"} in queries
    assert {"state": "failed"} in queries
    assert {"state": "succeeded", "from_date": "2026-12-01"} in queries
    assert {"state": "succeeded", "message": "msg_abc"} in queries
    assert not any("delivery" in q for q in queries)  # the POST form's box is not a filter
    assert visited[0].how == "start" and visited[1].how.startswith("link from")


def test_the_crawl_is_bounded_per_page_kind_and_in_all():
    rows = "".join(f'<a href="{PORTAL}deliveries/?after={n}">next</a>' for n in range(30))
    fetch, fetched = fake_site({PORTAL: rows, f"{PORTAL}deliveries/": rows})

    visited = crawl(fetch, SITE + PORTAL, HINTS)
    assert sum("after=" in v.url for v in visited) == MAX_PER_SHAPE

    assert len(crawl(fetch, SITE + PORTAL, HINTS, limit=3)) == 3


def test_pages_no_link_reaches_are_visited_too_and_non_html_is_not_a_page():
    fetch, fetched = fake_site({PORTAL: "", f"{PORTAL}events/": ""})
    extra = [(SITE + f"{PORTAL}events/", "route catalogue"), (SITE + f"{PORTAL}p.json", "route p")]

    visited = crawl(fetch, SITE + PORTAL, HINTS, extra=extra)

    assert [(v.name, v.how) for v in visited] == [
        ("webhooks", "start"),
        # Named after its route, as every page is (the catalogue's route exists since the merge).
        ("catalogue", "route catalogue"),
    ]
    assert SITE + f"{PORTAL}p.json" in fetched


def test_a_filter_form_gives_one_query_per_field():
    [form] = [f for f in parse(LOG).forms if f.method == "get"]
    queries = filter_variants(form, HINTS)
    assert queries[0] == {"state": "succeeded"}
    assert len(queries) == 4  # failed (first real option; the last is the selected one), date, id


def test_from_a_filtered_page_the_crawl_leaves_its_other_filters_and_pages_alone():
    log = f"{PORTAL}deliveries/"
    page = f"""<a href="{log}?after=2">Next</a> <a href="{log}?state=failed">Failed</a>
    <a href="{log}">Clear filters</a> <a href="{PORTAL}">Webhooks</a>"""
    fetch, fetched = fake_site({PORTAL: f'<a href="{log}">Log</a>', log: page})

    crawl(fetch, SITE + PORTAL, HINTS)

    assert sorted(urlsplit(url).path + "?" + urlsplit(url).query for url in fetched) == sorted(
        [f"{PORTAL}?", f"{log}?", f"{log}?after=2", f"{log}?state=failed"]
    )
