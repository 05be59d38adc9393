"""How long the retention purge takes, and how long it holds any lock, on a big log.

    .venv/bin/python bench/purge.py                                   # SQLite (a temporary file)
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/wh11 .venv/bin/python bench/purge.py
    DATABASE_URL=mysql://root@127.0.0.1:3306/wh11 .venv/bin/python bench/purge.py

It builds a throw-away database (``<name>_purge_bench`` on a server), seeds ``--attempts``
attempts (4 per delivery, 10 webhooks per event; 80 % of them past retention: succeeded
40 days ago or failed 100 days ago, the rest from yesterday), then runs the purge
(``webhooks.retention.purge``, the code of ``manage.py webhooks_purge``) while another
thread keeps writing live traffic (an event, a delivery and an attempt per transaction).
It reports the total time, the longest purge transaction (every lock the purge takes is
a row lock held until its transaction commits) and the slowest live write, and writes
them to ``bench/results/purge.json`` (keyed by database).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

ATTEMPTS_PER_DELIVERY = 4
WEBHOOKS = 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attempts", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=None, help="default: the setting's")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "purge.json"))
    args = parser.parse_args()

    import django

    django.setup()
    from bench.scratch import save_results, scratch_database

    with scratch_database("purge_bench"):
        results = run(args.attempts, args.batch_size)
    save_results(args.out, results, f"python bench/purge.py --attempts {args.attempts}")


def seed(attempts: int) -> dict:
    from django.utils import timezone

    from webhooks.models import Delivery, DeliveryAttempt, Event, Subscription

    now = timezone.now()
    subs = [
        Subscription.objects.create(url=f"https://hooks.example.com/{i}", all_events=True)
        for i in range(WEBHOOKS)
    ]
    created_at = Delivery._meta.get_field("created_at")
    created_at.auto_now_add = False  # the seed gives each row its own time
    deliveries_total = attempts // ATTEMPTS_PER_DELIVERY
    events_total = max(1, deliveries_total // WEBHOOKS)
    counts = {"succeeded_old": 0, "failed_old": 0, "recent": 0}
    data = {"id": 1, "title": "An article", "body": "x" * 500}
    per_batch = 500  # events per batch: 5,000 deliveries, 20,000 attempts
    try:
        for start in range(0, events_total, per_batch):
            events, deliveries, rows = [], [], []
            for n in range(start, min(events_total, start + per_batch)):
                kind = ("succeeded_old", "succeeded_old", "failed_old", "succeeded_old", "recent")[
                    n % 5
                ]
                age = {"succeeded_old": 40, "failed_old": 100, "recent": 1}[kind]
                at = now - timedelta(days=age, seconds=n)
                event = Event(id=uuid.uuid4(), type="article.created", data=data, occurred_at=at)
                event.fanned_out_at = at
                events.append(event)
                for sub in subs:
                    delivery = Delivery(
                        id=uuid.uuid4(),
                        event=event,
                        subscription=sub,
                        status="failed" if kind == "failed_old" else "succeeded",
                        attempt_count=ATTEMPTS_PER_DELIVERY,
                        next_attempt_at=None,
                        created_at=at,
                    )
                    deliveries.append(delivery)
                    counts[kind] += 1
                    rows.extend(
                        DeliveryAttempt(
                            delivery=delivery,
                            number=k + 1,
                            request_url=sub.url,
                            request_headers={"webhook-id": f"msg_{delivery.id.hex}"},
                            response_status_code=503 if k < 3 else 200,
                            response_body="Service Unavailable" if k < 3 else "ok",
                            duration_ms=40,
                            succeeded=k == 3,
                            created_at=at,
                        )
                        for k in range(ATTEMPTS_PER_DELIVERY)
                    )
            Event.objects.bulk_create(events)
            Delivery.objects.bulk_create(deliveries, batch_size=2000)
            DeliveryAttempt.objects.bulk_create(rows, batch_size=2000)
    finally:
        created_at.auto_now_add = True
    return {"deliveries": counts, "events": events_total, "webhooks": subs}


class LiveTraffic(threading.Thread):
    """Writes one event, delivery and attempt per transaction until stopped; times each."""

    def __init__(self, subscription) -> None:
        super().__init__(daemon=True)
        self.subscription = subscription
        self.stop = threading.Event()
        self.latencies: list[float] = []

    def run(self) -> None:
        from django.db import connection, transaction

        from webhooks.models import Delivery, DeliveryAttempt, Event

        try:
            while not self.stop.is_set():
                t0 = time.perf_counter()
                with transaction.atomic():
                    event = Event.objects.create(type="article.created", data={"live": True})
                    delivery = Delivery.objects.create(
                        event=event, subscription=self.subscription, status="succeeded"
                    )
                    DeliveryAttempt.objects.create(
                        delivery=delivery, number=1, request_url=self.subscription.url
                    )
                self.latencies.append(time.perf_counter() - t0)
                time.sleep(0.01)
        finally:
            connection.close()


def run(attempts: int, batch_size: int | None) -> dict:
    from django.db import connection

    from webhooks import retention
    from webhooks.conf import conf
    from webhooks.models import Delivery, DeliveryAttempt, Event

    t0 = time.perf_counter()
    seeded = seed(attempts)
    seed_s = time.perf_counter() - t0
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # as autovacuum would have on tables that grew slowly
    before = {
        "attempts": DeliveryAttempt.objects.count(),
        "deliveries": Delivery.objects.count(),
        "events": Event.objects.count(),
    }
    transactions: list[float] = []
    live = LiveTraffic(seeded["webhooks"][0])
    live.start()
    time.sleep(0.5)  # live traffic's baseline
    t0 = time.perf_counter()
    report = retention.purge(
        batch_size=batch_size, progress=lambda r: transactions.append(r.last_transaction_s)
    )
    purge_s = time.perf_counter() - t0
    time.sleep(0.5)
    live.stop.set()
    live.join(timeout=30)
    kept = seeded["deliveries"]["recent"]
    assert report.deliveries == before["deliveries"] - kept, (report, before, kept)
    assert Delivery.objects.filter(event__data__live=True).count() == len(live.latencies)
    return {
        "attempts_seeded": before["attempts"],
        "deliveries_seeded": before["deliveries"],
        "events_seeded": before["events"],
        "seed_seconds": round(seed_s, 1),
        "batch_size": batch_size or conf.PURGE_BATCH_SIZE,
        "deleted": {
            "attempts": report.attempts,
            "deliveries": report.deliveries,
            "events": report.events,
        },
        "purge_seconds": round(purge_s, 2),
        "attempts_deleted_per_s": round(report.attempts / purge_s) if purge_s else None,
        "transactions": report.batches,
        "transaction_ms_median": round(statistics.median(transactions) * 1000, 1),
        "transaction_ms_p99": round(
            sorted(transactions)[int(0.99 * (len(transactions) - 1))] * 1000, 1
        ),
        "transaction_ms_longest": round(report.longest_transaction_s * 1000, 1),
        "live_writes": len(live.latencies),
        "live_write_ms_median": round(statistics.median(live.latencies) * 1000, 1),
        "live_write_ms_longest": round(max(live.latencies) * 1000, 1),
    }


if __name__ == "__main__":
    main()
