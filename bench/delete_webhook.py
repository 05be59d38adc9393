"""Deleting a busy webhook from the admin, on a copy of a data set of ``bench.datagen``.

    .venv/bin/python -m bench.delete_webhook --database wh_scale_1m

It copies the database (``createdb -T``: nobody may be connected to it meanwhile), then,
as the superuser ``scale-admin``, opens the admin's delete page of the webhook with the
most deliveries (its confirmation: what goes with it) and confirms it, as a person
would, then deletes the webhook with the fewest deliveries the same way: the two
deletions should cost the same. Then it runs what the deletion enqueued (the task that
deletes the busy webhook's log, ``webhooks.removal``), timed. It reports each step's
time, the statements, the process's peak RSS before and after, and the size of the
log; the copy is dropped at the end. Results: ``bench/results/delete_webhook.json``
(keyed by database and label).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

from bench.harness import PG_URL

ROOT = Path(__file__).resolve().parent.parent


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", required=True, help="a data set of bench.datagen")
    parser.add_argument("--label", default="", help="stored beside the figures, e.g. 'before'")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "delete_webhook.json"))
    args = parser.parse_args(argv)

    copy = f"{args.database}_delete"
    server = ["-h", "127.0.0.1", "-U", "postgres"]
    subprocess.run(["dropdb", *server, "--if-exists", copy], check=True)
    subprocess.run(["createdb", *server, "-T", args.database, copy], check=True)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    os.environ["DATABASE_URL"] = f"{PG_URL.rsplit('/', 1)[0]}/{copy}"
    try:
        result = measure(args.label)
    finally:
        from django.db import connection

        connection.close()
        subprocess.run(["dropdb", *server, copy], check=True)
    out = Path(args.out)
    stored = json.loads(out.read_text()) if out.exists() else {}
    stored[f"{args.database}{'/' + args.label if args.label else ''}"] = result
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(stored, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def measure(label: str) -> dict:
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.contenttypes.models import ContentType
    from django.db import connection
    from django.db.models import Count
    from django.test import Client
    from django.urls import reverse

    from webhooks import outbox, removal
    from webhooks.models import Delivery, DeliveryAttempt, Subscription

    # No worker runs here: the task the deletion enqueues is run below, timed.
    enqueued = []
    outbox.enqueue = lambda func, *args: enqueued.append((func, args)) or True
    by_size = (
        Delivery.objects.values("subscription")
        .annotate(n=Count("pk"))
        .values_list("subscription", flat=True)
    )
    busiest = by_size.order_by("-n")[:1].get()
    quietest = by_size.order_by("n")[:1].get()
    deliveries = Delivery.objects.filter(subscription=busiest).count()
    attempts = DeliveryAttempt.objects.filter(delivery__subscription=busiest).count()
    quiet_deliveries = Delivery.objects.filter(subscription=quietest).count()
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    client = Client()
    client.force_login(get_user_model().objects.get(username="scale-admin"))
    url = reverse("admin:webhooks_subscription_delete", args=[busiest])
    quiet_url = reverse("admin:webhooks_subscription_delete", args=[quietest])
    ContentType.objects.get_for_model(Subscription)  # cached in a running server (the admin log)
    steps = {}
    rss_before = peak_rss_mb()
    for step, do in (
        ("confirmation page", lambda: client.get(url)),
        ("delete", lambda: client.post(url, {"post": "yes"})),
        ("delete, the quietest webhook", lambda: client.post(quiet_url, {"post": "yes"})),
        ("the log, by the task", lambda: removal.clear(*enqueued[0][1])),
    ):
        statements = []
        with connection.execute_wrapper(partial(_count, statements)):
            started = time.perf_counter()
            response = do()
            took = time.perf_counter() - started
        if step != "the log, by the task":
            assert response.status_code in (200, 302), (step, response.status_code)
        steps[step] = {"seconds": round(took, 3), "queries": len(statements)}
    assert not Subscription.objects.filter(pk__in=[busiest, quietest]).exists()
    assert not Delivery.objects.filter(subscription=busiest).exists()
    return {
        "label": label,
        "deliveries": deliveries,
        "attempts": attempts,
        "quietest_webhook_deliveries": quiet_deliveries,
        "steps": steps,
        "peak_rss_mb": {"before": rss_before, "after": peak_rss_mb()},
        "load": [round(x, 2) for x in os.getloadavg()],
        "measured_at": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "command": "python -m bench.delete_webhook " + " ".join(sys.argv[1:]),
    }


def _count(statements, execute, sql, params, many, context):
    statements.append(1)  # not the text: the delete's statements hold thousands of ids each
    return execute(sql, params, many, context)


if __name__ == "__main__":
    main()
