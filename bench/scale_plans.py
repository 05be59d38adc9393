"""The plans behind issue 23's fixes of the admin's delivery log, before and after, with
``EXPLAIN (ANALYZE, BUFFERS)`` on a database ``bench.datagen`` filled (PostgreSQL).

    python -m bench.scale_plans --database webhooks_scale_10m

For Big's staff (scope of the organisation "Big") and a superuser: the count Django's
admin made of every list (``COUNT(*)`` of the filtered log) beside the bounded one
(``webhooks.admin.paging``); the "failed" filter's page and count without and with
``webhooks_delivery_failed`` (dropped inside a transaction rolled back); the search by
URL joined on ``url LIKE`` beside the matching webhooks' ids; the webhook filter's list
of every webhook beside its first 50. Written to ``bench/results/scale_plans.json``;
printed: each query's execution time.
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


def sql_of(run) -> str:
    """The (last) statement ``run()`` sends, as PostgreSQL received it."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        run()
    return queries.captured_queries[-1]["sql"]


def explain(sql: str) -> dict:
    from django.db import connection

    from bench.scale_pages import shortened

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
        plan = [shortened(row[0]) for row in cursor.fetchall()]
    total = next(float(m[1]) for line in plan if (m := re.match(r"Execution Time: ([\d.]+)", line)))
    return {"execution_ms": total, "sql": shortened(sql), "plan": plan}


def cases(scope: str) -> dict:
    """{name: (before, after)}: callables running the old and the new statement."""
    from webhooks.models import Delivery, Subscription

    def log(scoped: bool):
        deliveries = Delivery.objects.select_related("event", "subscription")
        return deliveries.filter(subscription__scope=scope) if scoped else deliveries

    def page(qs):
        return lambda: list(qs.order_by("-created_at", "-pk")[:50])

    def counted(qs, bounded: bool):
        return lambda: (qs.order_by()[:10_001] if bounded else qs).count()

    out = {}
    for who, scoped in (("staff", True), ("superuser", False)):
        everything = log(scoped)
        failed = everything.filter(status="failed")
        hooks = Subscription.objects.filter(scope=scope) if scoped else Subscription.objects.all()
        ids = list(hooks.filter(url__icontains="org-1").order_by().values_list("pk", flat=True))
        out[f"{who}: count of the log"] = (
            counted(everything, False),
            counted(everything, True),
        )
        out[f"{who}: failed, page"] = (page(failed), page(failed))
        out[f"{who}: failed, count"] = (counted(failed, False), counted(failed, True))
        out[f"{who}: search URL"] = (
            page(everything.filter(subscription__url__icontains="org-1")),
            page(everything.filter(subscription_id__in=ids)),
        )
        out[f"{who}: webhook filter's list"] = (
            lambda hooks=hooks: list(
                hooks.only("pk", "description", "url").order_by("description", "url")
            ),
            lambda hooks=hooks: list(hooks.only("pk", "description", "url").order_by("pk")[:50]),
        )
    return out


def without_failed_index(run):
    """``run()`` while ``webhooks_delivery_failed`` is dropped (rolled back after)."""
    from django.db import connection, transaction

    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("DROP INDEX webhooks_delivery_failed")
        result = run()
        transaction.set_rollback(True)
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", required=True)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "scale_plans.json"))
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    os.environ["DATABASE_URL"] = f"{PG_URL.rsplit('/', 1)[0]}/{args.database}"
    import django

    django.setup()
    from example_project.organisations.models import Organisation

    scope = Organisation.objects.get(slug="big").scope
    results = {}
    for name, (before, after) in cases(scope).items():
        print(f"scale_plans: {name} …", file=sys.stderr, flush=True)
        old = sql_of(before)
        if "failed" in name:  # before: the log as it was, without the index
            results[name] = {
                "before": without_failed_index(lambda old=old: explain(old)),
                "after": explain(sql_of(after)),
            }
        else:
            results[name] = {"before": explain(old), "after": explain(sql_of(after))}
        figures = results[name]
        print(
            f"{name:34} {figures['before']['execution_ms']:10.1f} ms → "
            f"{figures['after']['execution_ms']:8.1f} ms"
        )
    out = Path(args.out)
    stored = json.loads(out.read_text()) if out.exists() else {}
    stored[args.database] = {
        "measured_at": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "load": [round(x, 2) for x in os.getloadavg()],
        "command": "python -m bench.scale_plans " + " ".join(sys.argv[1:]),
        "queries": results,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(stored, indent=2) + "\n")


if __name__ == "__main__":
    main()
