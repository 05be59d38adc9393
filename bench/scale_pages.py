"""Issue 23's scale ladder for the pages: server time and queries of the admin's, the API's
and the customer portal's list and detail pages on a database ``bench.datagen`` filled.

    python -m bench.scale_pages --database webhooks_scale_10k --database webhooks_scale_1m

Each ``--database`` (on the PostgreSQL server of ``BENCH_POSTGRES_URL``) holds one size of
the ladder, generated beforehand (``python -m bench.datagen``; its JSON report may be
passed as ``--made``). For each, the database is migrated, then every page is rendered
``--repeat`` times with Django's test client (``bench.settings``, ``DEBUG = False``) as
Big's staff member (``big-staff``: Big's webhooks only) and as a superuser (every tenant);
the portal as Big's staff member only (a superuser belongs to no organisation). Recorded
per page: the median and worst server time, the queries, and ``EXPLAIN (ANALYZE)`` of the
page's slowest query, in ``bench/results/scale_pages.json`` (one key per database).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
GOAL_MS = 300


def pages(big_scope: str) -> dict[str, list[tuple[str, str]]]:
    """{who: [(page, url)]}: the pages measured, found from the data (Big's busiest
    webhook, one of its failed deliveries, …)."""
    from webhooks.models import Delivery, Subscription

    busy = Subscription.objects.get(scope=big_scope, url__endswith="/0")  # datagen's busy one
    delivery = (
        Delivery.objects.filter(subscription=busy, status="failed").order_by("-created_at").first()
    )
    admin = "/admin/webhooks/"
    api = "/api/webhooks/"
    portal = "/settings/integrations/webhooks/"
    url_part = busy.url.rsplit("/", 2)[-2]  # the tenant's part of its URLs
    both = [
        ("admin: deliveries", f"{admin}delivery/"),
        ("admin: deliveries, failed", f"{admin}delivery/?state=failed"),
        ("admin: deliveries, one webhook", f"{admin}delivery/?webhook={busy.pk}"),
        ("admin: deliveries, search event id", f"{admin}delivery/?q={delivery.event_id}"),
        ("admin: deliveries, search URL (every webhook)", f"{admin}delivery/?q={url_part}"),
        ("admin: deliveries, search URL (one webhook)", f"{admin}delivery/?q={url_part}/0"),
        ("admin: delivery page", f"{admin}delivery/{delivery.pk}/change/"),
        ("admin: webhooks", f"{admin}subscription/"),
        ("admin: webhook page (health)", f"{admin}subscription/{busy.pk}/change/"),
        ("api: deliveries", f"{api}deliveries/"),
        ("api: deliveries, failed", f"{api}deliveries/?status=failed"),
        ("api: delivery", f"{api}deliveries/{delivery.pk}/"),
        ("api: events", f"{api}events/"),
        ("api: webhooks", f"{api}subscriptions/"),
        ("api: webhook", f"{api}subscriptions/{busy.pk}/"),
    ]
    customer = [
        ("portal: webhooks", portal),
        ("portal: webhook page (health)", f"{portal}{busy.pk}/"),
        ("portal: deliveries", f"{portal}deliveries/"),
        ("portal: deliveries, failed", f"{portal}deliveries/?state=failed"),
        ("portal: deliveries, one webhook", f"{portal}deliveries/?webhook={busy.pk}"),
        ("portal: delivery page", f"{portal}deliveries/{delivery.pk}/"),
    ]
    return {"big-staff": both + customer, "scale-admin": both}


#: Longest text kept of a statement or a plan line: an ``IN`` list of 10,000 webhook ids
#: would make the results file megabytes.
KEPT = 600


def shortened(text: str) -> str:
    return text if len(text) <= KEPT else f"{text[:KEPT]}… ({len(text):,} characters)"


def explain(sql: str) -> list[str]:
    """The plan PostgreSQL chose for ``sql``, run (ANALYZE), as text lines."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
        return [shortened(row[0]) for row in cursor.fetchall()]


def measure_page(client, url: str, repeat: int) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from bench.scratch import timed_page

    figures = timed_page(client, url, repeat)
    with CaptureQueriesContext(connection) as queries:
        client.get(url)
    slowest = max(queries.captured_queries, key=lambda q: float(q["time"]), default=None)
    if slowest and slowest["sql"].lstrip().upper().startswith("SELECT"):
        figures["slowest_query"] = shortened(slowest["sql"])
        figures["slowest_plan"] = explain(slowest["sql"])
    figures["within_goal"] = figures["median_ms"] <= GOAL_MS
    return figures


def measure(repeat: int, big_scope: str, only: str = "") -> dict:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    results = {}
    for who, listed in pages(big_scope).items():
        client = Client()
        client.force_login(get_user_model().objects.get(username=who))
        for name, url in listed:
            if only and not re.search(only, name):
                continue
            print(f"scale_pages: {who} {name} …", file=sys.stderr, flush=True)
            results.setdefault(who, {})[name] = {"url": url, **measure_page(client, url, repeat)}
    return results


def sizes() -> dict:
    from django.db import connection

    with connection.cursor() as cursor:  # the planner's estimate: a count(*) would be a scan
        cursor.execute(
            "SELECT relname, reltuples::bigint FROM pg_class WHERE relname = ANY(%s)",
            [["webhooks_deliveryattempt", "webhooks_delivery", "webhooks_subscription"]],
        )
        estimates = dict(cursor.fetchall())
    return {
        "attempts": estimates.get("webhooks_deliveryattempt"),
        "deliveries": estimates.get("webhooks_delivery"),
        "webhooks": estimates.get("webhooks_subscription"),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", action="append", required=True)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "scale_pages.json"))
    parser.add_argument("--label", default="", help="stored beside the figures, e.g. 'before'")
    parser.add_argument("--only", default="", help="measure only the pages matching this regex")
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    base = PG_URL.rsplit("/", 1)[0]
    os.environ["DATABASE_URL"] = f"{base}/{args.database[0]}"
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    out = Path(args.out)
    stored = json.loads(out.read_text()) if out.exists() else {}
    for name in args.database:
        connection.close()
        connection.settings_dict["NAME"] = name
        started = time.perf_counter()
        call_command("migrate", verbosity=0)
        migrated = round(time.perf_counter() - started, 1)
        from example_project.organisations.models import Organisation

        big = Organisation.objects.get(slug="big")
        load_before = os.getloadavg()
        result = {
            "label": args.label,
            "sizes": sizes(),
            "migrate_seconds": migrated,
            "pages": measure(args.repeat, big.scope, args.only),
            "load_before": [round(x, 2) for x in load_before],
            "load_after": [round(x, 2) for x in os.getloadavg()],
            "cpus": os.cpu_count(),
            "repeat": args.repeat,
            "measured_at": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
            "command": "python -m bench.scale_pages " + " ".join(sys.argv[1:]),
        }
        stored[f"{name}{'/' + args.label if args.label else ''}"] = result
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(stored, indent=2) + "\n")
        table(name, result)


def table(name: str, result: dict) -> None:
    print(f"== {name} {result['label']} {result['sizes']} load {result['load_before']}")
    for who, measured in result["pages"].items():
        for page, figures in measured.items():
            print(
                f"{who:12} {page:40} {figures['median_ms']:8.1f} ms {figures['queries']:3} q"
                f"  slowest {figures['slowest_query_ms']} ms"
            )


if __name__ == "__main__":
    main()
