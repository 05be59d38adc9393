"""Before and after migration 0012 (the figures' covering indexes) on one seeded database.

    .venv/bin/python bench/stats_index_ab.py [--rounds 3]     # SQLite (a temporary file)
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/wh_ab .venv/bin/python bench/stats_index_ab.py

Seeds what ``bench/portal_bench.py`` seeds (a busy webhook with 100,000 attempts over
7 days), then renders the busy webhook's portal page, the portal's webhook list, the
admin's page of that webhook and the admin's webhook list, the indexes of migration 0010
and of 0012 taking turns each round, so both see the same machine load. Per page and
round: the median wall time and the median CPU time of this process (on SQLite the
database runs in it, so the CPU time is the server's work, whatever else the machine
runs) of 5 renders. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

STATES = {
    "before": ("webhooks", "0011_subscription_rate_limit"),
    "after": ("webhooks", "0012_stats_covering_indexes"),
}


def migrate(target) -> None:
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([target])
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")


def render(client, url: str, repeat: int) -> tuple[float, float]:
    client.get(url)  # warm up
    wall, cpu = [], []
    for _ in range(repeat):
        started, cpu_started = time.perf_counter(), time.process_time()
        response = client.get(url)
        wall.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - cpu_started) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return round(statistics.median(wall), 1), round(statistics.median(cpu), 1)


def run(rounds: int, repeat: int) -> dict:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.urls import reverse

    from bench.portal_bench import seed
    from webhooks.models import Subscription

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    user, _, figures = seed(100_000)
    busy = Subscription.objects.get(url="http://127.0.0.1:9/busy")
    portal, admin = Client(), Client()
    portal.force_login(user)
    admin.force_login(get_user_model().objects.create_superuser("ab-admin", password="pw"))
    pages = {
        "portal: the busy webhook": (portal, reverse("webhooks_portal:webhook", args=[busy.pk])),
        "portal: webhook list": (portal, reverse("webhooks_portal:webhooks")),
        "admin: the busy webhook": (admin, f"/admin/webhooks/subscription/{busy.pk}/change/"),
        "admin: webhook list": (admin, "/admin/webhooks/subscription/"),
    }
    results = {state: {page: [] for page in pages} for state in STATES}
    for _ in range(rounds):
        for state, target in STATES.items():
            migrate(target)
            for page, (client, url) in pages.items():
                wall, cpu = render(client, url, repeat)
                results[state][page].append({"wall_ms": wall, "cpu_ms": cpu})
    return {**figures, "rounds": rounds, "repeat": repeat, "pages": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    import django

    django.setup()
    from django.db import connection

    from bench.scratch import scratch_database

    with scratch_database("stats_index_ab"):
        results = run(args.rounds, args.repeat)
        results["database"] = connection.vendor
    results["load_average_after"] = os.getloadavg()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
