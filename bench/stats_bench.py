"""What a webhook's figures (webhooks.stats.endpoint), the admin's webhook list and
``webhooks_health`` cost on big tables.

    .venv/bin/python bench/stats_bench.py                  # SQLite (a temporary file)
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/wh_stats .venv/bin/python bench/stats_bench.py

It builds a throw-away test database, seeds one busy webhook with ``--rows`` deliveries
over the last 7 days (each tried once, 10 % three times) and ``--others`` webhooks of
``--rows // 50`` deliveries each, then times each figure ``--repeat`` times and writes
the median, the worst and the query count to ``bench/results/stats.json``.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--others", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "stats.json"))
    args = parser.parse_args()

    import django

    django.setup()
    from bench.scratch import save_results, scratch_database

    with scratch_database("stats_bench"):
        results = run(args.rows, args.others, args.repeat)
    save_results(args.out, results, "python bench/stats_bench.py")


def seed(
    subscription, rows: int, rng: random.Random, *, types=("article.created",), failed=0.0
) -> int:
    """``rows`` deliveries to ``subscription`` over the last 7 days, each tried once (10 %:
    three times), 95 % succeeded; of the others a share ``failed`` gave up (``failed``),
    the rest wait for a retry. Events of ``types``, in the webhook's scope. Returns the
    number of attempts made."""
    from django.utils import timezone

    from webhooks.models import Delivery

    now = timezone.now()
    attempts_made = 0
    created_at = Delivery._meta.get_field("created_at")
    created_at.auto_now_add = False  # the seed gives each row its own time
    try:
        for start in range(0, rows, 5000):
            count = min(5000, rows - start)
            attempts_made += _seed_batch(subscription, count, now, rng, types, failed)
    finally:
        created_at.auto_now_add = True
    return attempts_made


def _seed_batch(subscription, count: int, now, rng: random.Random, types, failed) -> int:
    from webhooks.models import Delivery, DeliveryAttempt, Event

    events, deliveries, attempts = [], [], []
    for _ in range(count):
        at = now - timedelta(seconds=rng.uniform(0, 7 * 24 * 3600))
        tries = 3 if rng.random() < 0.1 else 1
        ok = rng.random() < 0.95
        # (No draw for a single type or no failed share: the stats benchmark's rows stay.)
        gave_up = not ok and failed and rng.random() < failed
        event = Event(
            id=uuid.uuid4(),
            type=types[0] if len(types) == 1 else rng.choice(types),
            data={},
            scope=subscription.scope,
            occurred_at=at,
            fanned_out_at=at,
        )
        last = at + timedelta(minutes=5 * (tries - 1))
        delivery = Delivery(
            id=uuid.uuid4(),
            event=event,
            subscription=subscription,
            status="succeeded" if ok else "failed" if gave_up else "pending",
            attempt_count=tries,
            last_attempt_at=last,
            next_attempt_at=None if ok or gave_up else last + timedelta(minutes=30),
            created_at=at,
        )
        events.append(event)
        deliveries.append(delivery)
        for number in range(1, tries + 1):
            attempts.append(
                DeliveryAttempt(
                    delivery=delivery,
                    number=number,
                    request_url=subscription.url,
                    response_status_code=200 if ok and number == tries else 503,
                    succeeded=ok and number == tries,
                    duration_ms=rng.randint(20, 900),
                    created_at=at + timedelta(minutes=5 * (number - 1)),
                )
            )
    Event.objects.bulk_create(events)
    Delivery.objects.bulk_create(deliveries)
    DeliveryAttempt.objects.bulk_create(attempts)
    return len(attempts)


def timed(fn, repeat: int) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    fn()  # warm up
    connection.queries_log.clear()  # the seed's queries overflowed the log: count anew
    times = []
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            fn()
            times.append((time.perf_counter() - started) * 1000)
    return {
        "median_ms": round(statistics.median(times), 1),
        "max_ms": round(max(times), 1),
        "queries": len(queries),
    }


def run(rows: int, others: int, repeat: int) -> dict:
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client

    from webhooks import health, stats
    from webhooks.models import Subscription

    rng = random.Random(7)
    started = time.perf_counter()
    busy = Subscription.objects.create(url="https://hooks.example.com/busy", all_events=True)
    quiet = Subscription.objects.create(url="https://hooks.example.com/quiet", all_events=True)
    attempts = seed(busy, rows, rng)
    for i in range(others):
        sub = Subscription.objects.create(url=f"https://hooks.example.com/{i}", all_events=True)
        attempts += seed(sub, rows // 50, rng)
    seconds = time.perf_counter() - started
    if connection.vendor == "postgresql":
        # What autovacuum does on a live site soon after such a load: without the planner's
        # statistics, a fresh table gets plans no running site would have.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    user = User.objects.create_superuser("bench", "bench@example.com", "pw")
    client = Client()
    client.force_login(user)
    small = Subscription.objects.exclude(pk__in=[busy.pk, quiet.pk]).first()

    def page(url):
        return lambda: client.get(url)

    return {
        "seed_seconds": round(seconds, 1),
        "attempts": attempts,
        "busy_webhook_attempts": stats.endpoint(busy).attempts_7d,
        "timings": {
            f"stats.endpoint, busy webhook ({rows} deliveries)": timed(
                lambda: stats.endpoint(busy), repeat
            ),
            f"stats.endpoint, small webhook ({rows // 50} deliveries)": timed(
                lambda: stats.endpoint(small), repeat
            ),
            "stats.endpoint, webhook never tried": timed(lambda: stats.endpoint(quiet), repeat),
            "webhook list (admin, success 24 h column)": timed(
                page("/admin/webhooks/subscription/"), repeat
            ),
            "busy webhook's admin page": timed(
                page(f"/admin/webhooks/subscription/{busy.pk}/change/"), repeat
            ),
            "webhooks_health (health.platform)": timed(lambda: health.platform(), repeat),
        },
    }


if __name__ == "__main__":
    main()
