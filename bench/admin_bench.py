"""How fast the admin's delivery log and a webhook's page render with 100 000 deliveries.

    .venv/bin/python bench/admin_bench.py                  # SQLite (a temporary file)
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/wh_admin .venv/bin/python bench/admin_bench.py

It builds a throw-away test database (``test_<name>`` on PostgreSQL), seeds one webhook
with ``--rows`` deliveries spread over the last 7 days (90 % succeeded, 7 % failed,
3 % pending) plus four smaller webhooks, renders each page ``--repeat`` times with
Django's test client as a superuser, and writes the median / worst time and the
query count of each page to ``bench/results/admin.json``.
"""

from __future__ import annotations

import argparse
import os
import random
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
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "admin.json"))
    args = parser.parse_args()

    import django

    django.setup()
    from bench.scratch import save_results, scratch_database

    with scratch_database("admin_bench"):
        results = run(args.rows, args.repeat)
    results.update({"rows": args.rows, "repeat": args.repeat})
    save_results(args.out, results, "python bench/admin_bench.py")


def seed(rows: int):
    from django.contrib.auth.models import User
    from django.utils import timezone

    from webhooks.models import Delivery, DeliveryAttempt, Event, Subscription

    rng = random.Random(7)
    now = timezone.now()
    big = Subscription.objects.create(url="https://hooks.example.com/big", all_events=True)
    small = [
        Subscription.objects.create(url=f"https://hooks.example.com/s{i}", all_events=True)
        for i in range(4)
    ]
    created_at = Delivery._meta.get_field("created_at")
    created_at.auto_now_add = False  # the seed gives each row its own time
    types = ["article.created", "article.updated", "article.deleted", "article.tagged"]
    batch = 5000
    try:
        total = rows + 4 * 1000
        for start in range(0, total, batch):
            count = min(batch, total - start)
            events, deliveries = [], []
            for i in range(count):
                n = start + i
                sub = big if n < rows else small[(n - rows) // 1000]
                at = now - timedelta(seconds=rng.uniform(0, 7 * 24 * 3600))
                roll = rng.random()
                status = "succeeded" if roll < 0.9 else "failed" if roll < 0.97 else "pending"
                event = Event(
                    id=uuid.uuid4(), type=rng.choice(types), data={"id": n}, occurred_at=at
                )
                events.append(event)
                deliveries.append(
                    Delivery(
                        event=event,
                        subscription=sub,
                        status=status,
                        attempt_count=1 if status == "succeeded" else 3,
                        last_status_code=200 if status == "succeeded" else 503,
                        next_attempt_at=at + timedelta(hours=1) if status == "pending" else None,
                        created_at=at,
                    )
                )
            Event.objects.bulk_create(events)
            Delivery.objects.bulk_create(deliveries)
    finally:
        created_at.auto_now_add = True
    one = Delivery.objects.filter(subscription=big).order_by("-created_at").first()
    DeliveryAttempt.objects.bulk_create(
        DeliveryAttempt(
            delivery=one,
            number=k + 1,
            request_url=big.url,
            request_headers={"webhook-id": one.webhook_id},
            response_status_code=503 if k < 7 else 200,
            response_body="x" * 200,
            duration_ms=40,
            succeeded=k == 7,
        )
        for k in range(8)
    )
    user = User.objects.create_superuser("bench", "bench@example.com", "pw")
    return user, big, one


def timed(client, url: str, repeat: int) -> dict:
    from bench.scratch import timed_page

    figures = timed_page(client, url, repeat)
    assert figures.pop("status") == 200, (url, figures)
    return {"url": url, **figures}


def run(rows: int, repeat: int) -> dict:
    from django.test import Client

    started = time.perf_counter()
    user, big, one = seed(rows)
    seeded = time.perf_counter() - started
    client = Client()
    client.force_login(user)
    base = "/admin/webhooks/delivery/"
    pages = {
        "delivery list": base,
        "delivery list, page 50": base + "?p=50",
        "delivery list, failed only": base + "?status__exact=failed",
        "delivery list, one webhook": base + f"?webhook={big.pk}",
        "delivery list, search event id": base + f"?q={one.event_id}",
        "delivery list, search URL": base + "?q=hooks.example.com/s2",
        "webhook page (100k deliveries)": f"/admin/webhooks/subscription/{big.pk}/change/",
        "webhook list": "/admin/webhooks/subscription/",
        "delivery page (8 attempts)": f"{base}{one.pk}/change/",
    }
    return {
        "seed_seconds": round(seeded, 1),
        "pages": {name: timed(client, url, repeat) for name, url in pages.items()},
    }


if __name__ == "__main__":
    main()
