"""Server time of every customer-portal page with 100,000 attempts for one customer.

    python -m bench.run portal                  # SQLite and PostgreSQL → bench/results/portal.json
    python -m bench.run portal --size tiny      # what CI runs (tests/test_bench_smoke.py)

``bench.run`` starts this module in a database of its own (``bench.harness.backend``,
migrated; ``bench.settings``: the example project, ``DEBUG = False``). It seeds one Pro
organisation: a busy webhook holding ``--attempts`` attempts over the last 7 days
(``bench.stats_bench``'s generator: 10 % tried three times, 5 % failing, a third of those
given up) beside the varied webhooks of ``tests.portal.pages.seed_portal`` (failing,
disabled, odd bodies), and a second organisation with a tenth as many. It then finds the
portal's pages as the browser test does — a crawl from the root by links and GET forms
(each filter of the deliveries log), plus every named route — so pages merged later are
measured without being listed here, and renders each ``--repeat`` times with Django's test
client, signed in as the organisation's webhook manager. Printed (last line, JSON): per
page the median and worst time, the queries, the slowest query; the goal is ≤ 200 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
django.setup()

GOAL_MS = 200
TYPES = ("article.created", "article.updated", "article.deleted", "article.tagged")


def organisation(name: str):
    from django.contrib.auth import get_user_model

    from example_project.demo.seed import webhook_managers
    from example_project.organisations.models import Membership, Organisation

    org = Organisation.objects.create(name=name, slug=name.lower(), is_pro=True)
    user = get_user_model().objects.create_user(f"{name.lower()}-manager", password="pw")
    user.groups.add(webhook_managers())
    Membership.objects.create(user=user, organisation=org)
    return org, user


def seed_attempts(subscription, attempts: int, rng: random.Random) -> int:
    """Deliveries to ``subscription`` until it has at least ``attempts`` attempts."""
    from bench.stats_bench import seed

    made = 0
    while made < attempts:
        rows = min(5000, max(1, int((attempts - made) / 1.2)))
        made += seed(subscription, rows, rng, types=TYPES, failed=0.35)
    return made


def seed(attempts: int) -> tuple[object, dict, dict]:
    from django.db import connection

    from tests.portal.pages import seed_portal
    from webhooks.models import DeliveryAttempt, Subscription

    rng = random.Random(7)
    started = time.perf_counter()
    acme, user = organisation("Acme")
    globex, _ = organisation("Globex")
    objects = seed_portal(acme.scope)
    busy = Subscription.objects.create(
        scope=acme.scope, url="http://127.0.0.1:9/busy", description="Busy", all_events=True
    )
    made = seed_attempts(busy, attempts, rng)
    theirs = Subscription.objects.create(scope=globex.scope, url="http://127.0.0.1:9/g")
    seed_attempts(theirs, attempts // 10, rng)
    if connection.vendor == "postgresql":
        # What autovacuum does on a live site soon after such a load (bench.stats_bench).
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    figures = {
        "seed_seconds": round(time.perf_counter() - started, 1),
        "attempts_of_the_customer": DeliveryAttempt.objects.filter(
            delivery__subscription__scope=acme.scope
        ).count(),
        "attempts_of_the_busy_webhook": made,
        "attempts_in_the_database": DeliveryAttempt.objects.count(),
    }
    return user, objects, figures


def timed(client, url: str, repeat: int) -> dict:
    from bench.scratch import timed_page

    figures = timed_page(client, url, repeat)
    return {**figures, "within_goal": figures["median_ms"] <= GOAL_MS}


def measure(attempts: int, repeat: int) -> dict:
    from django.conf import settings
    from django.test import Client

    from tests.portal.pages import PORTAL, crawl, route_urls

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    user, objects, figures = seed(attempts)
    client = Client()
    client.force_login(user)
    site = "http://testserver"

    def fetch(url):
        response = client.get(url)
        content_type = response.get("Content-Type", "")
        html = response.content.decode(errors="replace") if "html" in content_type else ""
        return response.status_code, content_type, html

    routes = [(site + path, how) for path, how in route_urls(objects)]
    visited = crawl(fetch, site + PORTAL, objects["hints"], extra=routes)
    pages, not_pages = {}, {}
    for page in visited:
        path = page.url.removeprefix(site)
        if page.status != 200:
            # A route filled in by guess answering 405 (POST only) or 404 is not a page; a
            # linked page that does not answer 200 is reported as it is.
            (not_pages if page.how.startswith("route") else pages)[page.name] = {
                "url": path,
                "status": page.status,
                "how": page.how,
            }
            continue
        print(f"portal: {page.name} …", file=sys.stderr, flush=True)
        pages[page.name] = {"url": path, "how": page.how, **timed(client, page.url, repeat)}
    measured = [p for p in pages.values() if "median_ms" in p]
    return {
        **figures,
        "repeat": repeat,
        "goal_ms": GOAL_MS,
        "pages_measured": len(measured),
        "all_within_goal": bool(measured) and all(p["within_goal"] for p in measured),
        "slowest_page": max(measured, key=lambda p: p["median_ms"])["url"] if measured else None,
        "pages": pages,
        "not_pages": not_pages,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attempts", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    result = measure(args.attempts, args.repeat)
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
