"""Finding every portal page, whoever wrote it: a bounded crawl from the portal's root by
same-origin links (and GET forms, e.g. the deliveries log's filters), plus every named
route of ``webhooks_portal`` filled in with seeded objects. Shared by the browser test
(tests/portal/test_portal_browser.py) and the benchmark (bench/portal_bench.py), so both
cover the pages merged after them without being told of each one.

Only GET: a crawl never submits a POST form and never follows a logout link.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

PORTAL = "/settings/integrations/webhooks/"
MAX_PAGES = 60
#: Variants of one page (one route, one set of query keys) visited at most: enough for a
#: healthy, a failing and a disabled webhook's pages, not every row of a long list.
MAX_PER_SHAPE = 4
NEVER_FOLLOW = re.compile(r"log-?out|sign-?out|/link/|magic", re.IGNORECASE)


@dataclass
class Form:
    action: str
    method: str
    fields: list[dict] = field(default_factory=list)


class _Parser(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.forms: list[Form] = []
        self._select: dict | None = None
        self._open: Form | None = None  # the form being read

    def handle_starttag(self, tag, attrs):
        a = {k: (v or "") for k, v in attrs}
        if tag == "a" and a.get("href") and "download" not in a:
            self.links.append(a["href"])
        elif tag == "form":
            self._open = Form(a.get("action", ""), (a.get("method") or "get").lower())
            self.forms.append(self._open)
        elif tag == "option" and self._select is not None:
            value = a.get("value", "")
            self._select["options"].append(value)
            if "selected" in a or self._select["value"] is None:
                self._select["value"] = value
        elif self._open is None or "name" not in a or "disabled" in a or "form" in a:
            return  # outside a form, or belonging to another one (form="…")
        elif tag == "input":
            kind = (a.get("type") or "text").lower()
            if kind in ("submit", "button", "reset", "image", "file"):
                return
            if kind in ("checkbox", "radio") and "checked" not in a:
                self._open.fields.append({"name": a["name"], "type": kind, "value": None})
                return
            self._open.fields.append({"name": a["name"], "type": kind, "value": a.get("value")})
        elif tag == "select":
            self._select = {"name": a["name"], "type": "select", "value": None, "options": []}
            self._open.fields.append(self._select)
        elif tag == "textarea":
            self._open.fields.append({"name": a["name"], "type": "textarea", "value": ""})

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        elif tag == "form":
            self._open = None


def parse(html: str) -> _Parser:
    parser = _Parser()
    parser.feed(html)
    return parser


def _in_portal(url: str, origin: str) -> str | None:
    """``url`` without its fragment if it is a portal page of this origin, else None."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or f"{parts.scheme}://{parts.netloc}" != origin:
        return None
    if not parts.path.startswith(PORTAL) or NEVER_FOLLOW.search(parts.path):
        return None
    return urlunsplit((parts.scheme, parts.netloc, parts.path, parts.query, ""))


def filter_variants(form: Form, hints: dict) -> list[dict]:
    """One query per field of a GET form, that field set to something it can match (the
    first real option of a select; a message id, a date, a type for text inputs)."""
    base = {f["name"]: f["value"] for f in form.fields if f["value"] not in (None, "")}
    queries = [base]
    for f in form.fields:
        name, kind = f["name"], f["type"]
        values = []
        if kind == "select":
            real = [o for o in f["options"] if o]
            values = real[:1] + real[-1:] if len(real) > 1 else real
        elif kind in ("date", "datetime-local"):
            values = [hints["date" if kind == "date" else "datetime"]]
        elif kind in ("text", "search"):
            lowered = name.lower()
            if "type" in lowered:
                values = [hints["event_type"]]
            elif "since" in lowered or "date" in lowered or "from" in lowered:
                values = [hints["date"]]
            else:
                values = [hints["message_id"]]
        elif kind in ("checkbox", "radio"):
            values = ["on"]
        for value in values:
            if value != base.get(name):
                queries.append({**base, name: value})
    return queries


def links_on(html: str, page_url: str, hints: dict) -> list[str]:
    """The portal pages this page leads to with a GET: links, and (from a page not filtered
    already) its GET forms with each filter set in turn. Filters are tried one at a time,
    and pages of a list one step from its first: not every combination."""
    parts = urlsplit(page_url)
    origin = f"{parts.scheme}://{parts.netloc}"
    found = []
    parsed = parse(html)
    for href in parsed.links:
        url = _in_portal(urljoin(page_url, href), origin)
        # From a filtered or later page of a list, not its other filters and pages: one
        # step (each filter, the next page) from the plain list covers them.
        if url and not (parts.query and urlsplit(url).path == parts.path):
            found.append(url)
    # Filters one at a time, from the unfiltered page: not every combination of them.
    forms = parsed.forms if not parts.query else []
    for form in forms:
        if form.method != "get":
            continue
        action = urljoin(page_url, form.action or page_url)
        if not _in_portal(action, origin):
            continue
        bare = urlunsplit(urlsplit(action)._replace(query="", fragment=""))
        for query in filter_variants(form, hints):
            found.append(bare + ("?" + urlencode(query) if query else ""))
    return found


def shape(url: str) -> tuple:
    """What makes two URLs "the same page": the route, and which query keys are set."""
    from django.urls import Resolver404, resolve

    parts = urlsplit(url)
    try:
        name = resolve(parts.path).view_name
    except Resolver404:
        name = parts.path
    return name, tuple(sorted(k for k, v in parse_qsl(parts.query) if v))


def page_name(url: str, taken: set[str]) -> str:
    """A file-name-safe name for a page: its route name, the filters set, a number if taken."""
    name, keys = shape(url)
    query = dict(parse_qsl(urlsplit(url).query))
    words = [name.split(":")[-1]] + [f"{k}-{query[k]}" for k in keys]
    base = re.sub(r"[^a-z0-9]+", "-", "-".join(words).lower()).strip("-")[:60] or "root"
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}-{n}"
    taken.add(candidate)
    return candidate


@dataclass
class Visited:
    url: str
    name: str
    status: int
    how: str  # "start", "link from <name>", "route <name>"
    html: str = ""


def crawl(
    fetch: Callable[[str], tuple[int, str, str]],
    start: str,
    hints: dict,
    *,
    extra: list[tuple[str, str]] = (),
    limit: int = MAX_PAGES,
    on_page: Callable[[Visited], None] | None = None,
) -> list[Visited]:
    """Breadth first from ``start`` (an absolute URL). ``fetch(url)`` → (status, content
    type, html); only HTML pages are followed and kept, and ``on_page`` is called on each
    while it is the one loaded. ``extra``: (url, how) pairs visited too if the links never
    led there (pages no link reaches yet)."""
    queue = [(start, "start")]
    seen, shapes, taken = set(), {}, set()
    visited: list[Visited] = []
    extra = list(extra)
    while (queue or extra) and len(visited) < limit:
        url, how = queue.pop(0) if queue else extra.pop(0)
        if url in seen:
            continue
        seen.add(url)
        key = shape(url)
        if shapes.get(key, 0) >= MAX_PER_SHAPE:
            continue
        status, content_type, html = fetch(url)
        if "html" not in content_type:
            continue  # JSON progress, a CSV export: not a page
        shapes[key] = shapes.get(key, 0) + 1
        here = Visited(url, page_name(url, taken), status, how, html)
        visited.append(here)
        if on_page is not None:
            on_page(here)
        for link in links_on(html, url, hints):
            if link not in seen:
                queue.append((link, f"link from {here.name}"))
    return visited


def route(name: str, objects: dict) -> str | None:
    """The path of route ``webhooks_portal:<name>`` filled in from ``objects``, or None if
    the portal has no such route (yet)."""
    for path, how in route_urls(objects):
        if how == f"route {name}":
            return path
    return None


def route_urls(objects: dict) -> list[tuple[str, str]]:
    """(path, "route <name>") for every ``webhooks_portal`` route, its parameters filled in
    from ``objects`` (webhook, delivery, attempt, event, event_type); routes needing
    something else (a magic link's token) are left out."""
    from django.urls import URLPattern, URLResolver, get_resolver

    namespace = get_resolver().namespace_dict.get("webhooks_portal")
    if namespace is None:
        return []
    prefix, resolver = namespace
    out = []

    def walk(patterns, path_prefix):
        for p in patterns:
            if isinstance(p, URLResolver):
                walk(p.url_patterns, path_prefix + str(p.pattern))
            elif isinstance(p, URLPattern) and p.name:
                route = path_prefix + str(p.pattern)
                url = _fill(route, p.name, objects)
                if url is not None:
                    out.append(("/" + prefix.lstrip("/") + url, f"route {p.name}"))

    walk(resolver.url_patterns, "")
    return out


_PARAM = re.compile(r"<(?:(\w+):)?(\w+)>")


def _fill(route: str, route_name: str, objects: dict) -> str | None:
    """``route`` with each parameter replaced: by its name (``delivery_id``, ``name``…),
    or for a bare ``pk``/``id`` by what the route is about (``delivery`` → a delivery)."""
    if route.startswith("^"):
        return None  # a regex route: not guessed

    def pk(kind):
        if objects.get(kind) is None:
            raise LookupError(kind)
        return str(objects[kind].pk)

    def value(match):
        converter, name = match.group(1) or "str", match.group(2).lower()
        if any(word in name for word in ("token", "signed", "link", "key")):
            raise LookupError(name)
        if name in ("pk", "id"):
            about = route_name.lower()
            name = next((w for w in ("attempt", "delivery", "type") if w in about), "webhook")
        if "attempt" in name or converter == "int":
            return pk("attempt")
        if "delivery" in name or "message" in name:
            return pk("delivery")
        if "type" in name or converter in ("slug", "path") or name == "name":
            return objects["event_type"]
        if "event" in name:
            return pk("event")
        return pk("webhook")

    try:
        return _PARAM.sub(value, route)
    except LookupError:
        return None


def hints_for(delivery, event_type: str) -> dict:
    at = delivery.created_at
    return {
        "message_id": delivery.webhook_id,
        "event_type": event_type,
        "date": at.date().isoformat(),
        "datetime": at.strftime("%Y-%m-%dT%H:%M"),
    }


# What the pages are shown: odd rows as well as tidy ones. --------------------------------

ODD_BODIES = [
    "",
    "<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1><script>alert(1)</script></body></html>",
    "x" * 20_000,  # one long line, no spaces: must wrap or scroll in its own box
    '{"error": {"code": "rate_limited", "retry_after": 30, "detail": "Slow down"}}',
    "binary\x01\x02\x1b[31m red \ufffd\u202e RTL \U0001f525 emoji",
]
LONG_URL = "http://127.0.0.1:9/" + "very-long-path-segment/" * 12 + "?token=abc"
#: No hyphen, no slash to break at: it must still not push a phone's page sideways.
UNBROKEN_URL = "http://127.0.0.1:9/" + "a" * 150


def seed_portal(scope: str, receiver_url: str = "http://127.0.0.1:9/ok") -> dict:
    """A customer's webhooks as a real account has them: a healthy one, one failing (HTTP
    500, a refused connection, odd response bodies), a disabled one with its reason, one
    with a very long URL; deliveries with attempts. Every URL is on 127.0.0.1 (port 9
    refuses), should anything try one. Returns the objects routes need."""
    from datetime import timedelta

    from django.utils import timezone

    from webhooks import health_hours
    from webhooks.models import Delivery, DeliveryAttempt, Event, EventType, Subscription

    now = timezone.now()
    types = list(EventType.objects.filter(is_active=True).order_by("name")[:3])
    names = [t.name for t in types] or ["article.created"]

    def webhook(url, description, **fields):
        sub = Subscription.objects.create(scope=scope, url=url, description=description, **fields)
        sub.event_types.set(types)
        return sub

    healthy = webhook(receiver_url, "Gradebook sync")
    failing = webhook(
        "http://127.0.0.1:9/500",
        "CRM (failing)",
        consecutive_failures=6,
        failing_since=now - timedelta(hours=5),
    )
    disabled = webhook(
        "http://127.0.0.1:9/gone",
        "Old integration",
        is_active=False,
        disabled_reason="The endpoint answered HTTP 410 Gone: disabled automatically.",
        disabled_at=now - timedelta(days=2),
    )
    webhook(LONG_URL, "A" * 120)
    webhook(UNBROKEN_URL, "")

    def delivery(sub, status, answers, minutes_ago):
        at = now - timedelta(minutes=minutes_ago)
        event = Event.objects.create(
            type=names[minutes_ago % len(names)],
            data={"id": minutes_ago, "title": "Fractions <b>&</b> décimales"},
            scope=scope,
            occurred_at=at,
            fanned_out_at=at,
        )
        d = Delivery.objects.create(
            event=event,
            subscription=sub,
            status=status,
            attempt_count=len(answers),
            last_status_code=answers[-1][0] if answers else None,
            last_attempt_at=at if answers else None,
            next_attempt_at=at + timedelta(hours=1) if status == "pending" else None,
        )
        Delivery.objects.filter(pk=d.pk).update(created_at=at)
        for number, (code, body) in enumerate(answers, 1):
            attempt = DeliveryAttempt.objects.create(
                delivery=d,
                number=number,
                request_url=sub.url,
                request_headers={"webhook-id": d.webhook_id, "content-type": "application/json"},
                response_status_code=code,
                response_headers={"content-type": "text/html", "x-long": "v" * 500} if code else {},
                response_body=body,
                duration_ms=40 + number,
                succeeded=bool(code and code < 300),
                error_kind=("" if code < 300 else "http_5xx") if code else "connection_refused",
                error_message="" if code else "Connection refused by 203.0.113.9:443",
                created_at=at,
            )
            health_hours.count([attempt])  # as the worker records it
        d.refresh_from_db()
        return d

    ok = delivery(healthy, "succeeded", [(200, "ok")], 5)
    delivery(healthy, "succeeded", [(503, ODD_BODIES[1]), (204, "")], 50)
    odd = [(500, body) for body in ODD_BODIES] + [(None, "")]
    failed = delivery(failing, "failed", odd, 20)
    delivery(failing, "pending", [(500, ODD_BODIES[2])], 30)
    delivery(disabled, "failed", [(410, ODD_BODIES[4])], 60 * 30)
    attempt = failed.attempts.order_by("number").first()
    return {
        "webhook": failing,
        "webhooks": [healthy, failing, disabled],
        "delivery": failed,
        "ok_delivery": ok,
        "attempt": attempt,
        "event": failed.event,
        "event_type": names[0],
        "hints": hints_for(failed, names[0]),
    }
