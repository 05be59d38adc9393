"""The database side of ``bench.backlog``: a Django process on the backlog's database.

    python -m bench.backlog_db fill --n 1000000 [--tasks]
    python -m bench.backlog_db plans --batch 100
    python -m bench.backlog_db check

Each command prints one JSON line (the last line of its output).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from datetime import timedelta
from unittest import mock

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
django.setup()

from django.db import DatabaseError, connection, transaction  # noqa: E402
from django.db.models import Count, F  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from tests.testapp.models import Article  # noqa: E402
from webhooks import dispatch, health_hours, outbox, sweeper  # noqa: E402
from webhooks.conf import conf  # noqa: E402
from webhooks.ids import uuid7  # noqa: E402
from webhooks.models import Delivery, DeliveryAttempt, Event  # noqa: E402

#: How long the workers were stopped: the events' times are spread over it.
OUTAGE = timedelta(hours=1)


class Rollback(Exception):
    pass


def fill(args) -> dict:
    """``n`` events as the host's saves leave them (not fanned out, not claimed), written
    with COPY. The first is a real save of an ``Article`` (its enqueue switched off); the
    others are its row with a new id, time and title, as further saves would write them.
    With ``--tasks`` the fan-out tasks are in the broker too, as a busy host's handoff
    thread pushes them (``WEBHOOKS_BATCH_SIZE`` ids per task); without, they were lost
    with the broker and the sweeper must find the events."""
    t0 = time.time()
    with mock.patch("webhooks.outbox._after_commit"), transaction.atomic():
        Article.objects.create(title="0")
    # (A data set's events are fanned out, but for its own tenants' sign-ups.)
    template = Event.objects.get(fanned_out_at__isnull=True, source_model="testapp.article")
    start = timezone.now() - OUTAGE
    step = OUTAGE / max(1, args.n)
    Event.objects.filter(pk=template.pk).update(occurred_at=start)
    ids = [template.pk]
    columns = ("id", "type", "data", "scope", "source_model", "source_id", "occurred_at")
    with connection.cursor() as cursor:
        copy_sql = f"COPY webhooks_event ({', '.join(columns)}) FROM STDIN"
        with cursor.cursor.copy(copy_sql) as copy:
            for n in range(1, args.n):
                at = start + n * step
                pk = uuid7(int(at.timestamp() * 1000))  # as the app keys them
                ids.append(pk)
                data = {**template.data, "id": n + 1, "title": str(n)}
                copy.write_row(
                    (
                        pk,
                        template.type,
                        json.dumps(data, separators=(",", ":")),
                        template.scope,
                        template.source_model,
                        str(n + 1),
                        at,
                    )
                )
        cursor.execute("ANALYZE webhooks_event")
    copied = time.time()
    tasks = 0
    if args.tasks:
        size = max(1, conf.BATCH_SIZE)
        for i in range(0, len(ids), size):
            tasks += outbox.enqueue(outbox.FAN_OUT_TASK, [str(pk) for pk in ids[i : i + size]])
    return {
        "events": Event.objects.filter(fanned_out_at__isnull=True).count(),
        "copy_seconds": copied - t0,
        "tasks": tasks,
        "enqueue_seconds": time.time() - copied,
    }


# The hot statements, captured as the code runs them, then explained --------------------


def _captured(work) -> list[str]:
    """The SQL ``work`` runs (parameters bound), in a transaction rolled back after."""
    with CaptureQueriesContext(connection) as captured:
        try:
            with transaction.atomic():
                work()
                raise Rollback
        except Rollback:
            pass
    return [
        q["sql"]
        for q in captured.captured_queries
        if not q["sql"].upper().startswith(("SAVEPOINT", "RELEASE", "ROLLBACK", "BEGIN"))
    ]


def _explain(sql: str) -> dict:
    with connection.cursor() as cursor:
        try:
            with transaction.atomic():
                cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
                plan = [row[0] for row in cursor.fetchall()]
                raise Rollback
        except Rollback:
            pass
    scans = [line.strip() for line in plan if "Scan" in line]
    return {
        "sql": sql if len(sql) < 600 else sql[:600] + " …",
        "plan": plan,
        "scans": scans,
        # A sequential scan of a table that grows with the backlog: the path to avoid.
        "seq_scans_of_big_tables": [
            s
            for s in scans
            if "Seq Scan" in s
            and any(t in s for t in ("webhooks_event ", "webhooks_delivery ", "deliveryattempt"))
        ],
        "ms": next(
            (float(line.split()[-2]) for line in plan if line.startswith("Execution Time")), None
        ),
    }


def plans(args) -> dict:
    """EXPLAIN (ANALYZE, BUFFERS) of each statement of the hot paths, as run now."""
    batch = args.batch
    now = timezone.now()
    recent = list(
        Delivery.objects.order_by("-created_at").select_related("event", "subscription")[:50]
    )
    recent_ids = [d.pk for d in recent]

    def record():
        # What a worker's recording of a group runs (dispatch._record_group).
        # The numbers as read under the lock: the workers record these deliveries too.
        locked = list(Delivery.objects.select_for_update().filter(pk__in=recent_ids).order_by("pk"))
        Delivery.objects.filter(pk__in=recent_ids).update(
            attempt_count=F("attempt_count") + 1, updated_at=now
        )
        attempts = [
            DeliveryAttempt(delivery=d, number=d.attempt_count + 1, created_at=now, succeeded=True)
            for d in locked
        ]
        DeliveryAttempt.objects.bulk_create(attempts)
        health_hours.count(attempts)

    paths = {
        # A fan-out task: the oldest waiting events (outbox broker, helping) and its inserts.
        "fan-out claim (process_events)": lambda: outbox.fan_out_and_lease([], oldest_others=batch),
        "sweeper: lost fan-outs (unfanned_events)": lambda: outbox.unfanned_events(now=now),
        "sweeper: fan out what it found": lambda: outbox.fan_out_many(
            outbox.unfanned_events(now=now), skip_locked=True
        ),
        "claim_due (sweeper, helping task)": lambda: outbox.claim_due(batch, now=now),
        "sweeper: work ahead?": lambda: sweeper.work_ahead(now + timedelta(seconds=50)),
        "deliver task: send_claimed's reads": lambda: dispatch.send_claimed(
            recent_ids, uuid.uuid4(), background=True
        ),
        "recording a group": record if recent else lambda: None,
    }
    out, failed = {}, {}
    for name, work in paths.items():
        # Half-way, the workers run beside this: a path run (or explained) again can meet
        # their locks and rows (a deadlock, an attempt number they just took). Tried again
        # a few times; a path that still fails is reported, not the whole benchmark.
        for tries in range(1, 4):
            try:
                statements = _captured(work)
                out[name] = [
                    _explain(sql)
                    for sql in statements
                    if sql.upper().startswith(("SELECT", "UPDATE", "INSERT", "WITH", "DELETE"))
                ]
                break
            except DatabaseError as exc:
                failed[name] = f"try {tries}: {exc}"[:300]
                time.sleep(0.5)
    return {
        "rows": {
            "events": Event.objects.count(),
            "events_waiting": Event.objects.filter(fanned_out_at__isnull=True).count(),
            "deliveries": Delivery.objects.count(),
            "attempts": DeliveryAttempt.objects.count(),
        },
        "paths": out,
        "errors": failed,
        "seq_scans_of_big_tables": sorted(
            {s for stmts in out.values() for st in stmts for s in st["seq_scans_of_big_tables"]}
        ),
    }


def check(args) -> dict:
    """What is left and what was doubled, as the database tells it: of the backlog's
    events and webhook, those without a tenant (a data set's all have one)."""
    events = Event.objects.filter(scope="")
    deliveries = Delivery.objects.filter(subscription__scope="")
    by_status = dict(deliveries.values_list("status").annotate(c=Count("id")))
    doubled = deliveries.values("event_id").annotate(c=Count("id")).filter(c__gt=1).count()
    return {
        "events": events.count(),
        "events_not_fanned_out": events.filter(fanned_out_at__isnull=True).count(),
        "deliveries": by_status,
        "events_with_two_deliveries": doubled,
        "attempts": DeliveryAttempt.objects.filter(delivery__subscription__scope="").count(),
        "deliveries_tried_more_than_once": deliveries.filter(attempt_count__gt=1).count(),
        "leased": Delivery.objects.filter(leased_until__isnull=False).count(),
    }


def prepare(args) -> dict:
    """A data set's own work put out of the way, as the scale ladder does: its waiting
    sign-up events marked fanned out (owed to thousands of its webhooks otherwise) and its
    deliveries waiting for a retry due tomorrow; both would go to its receivers' addresses
    (``https://hooks.example.com``), and a benchmark sends only to 127.0.0.1."""
    from bench.scale_ladder import prepare as put_off

    return put_off()


def main(argv=None) -> None:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fill")
    f.add_argument("--n", type=int, required=True)
    f.add_argument("--tasks", action="store_true")
    pl = sub.add_parser("plans")
    pl.add_argument("--batch", type=int, default=100)
    sub.add_parser("check")
    sub.add_parser("prepare")
    args = p.parse_args(argv)
    result = {"fill": fill, "plans": plans, "check": check, "prepare": prepare}[args.cmd](args)
    sys.stdout.write(json.dumps(result, default=str) + "\n")


if __name__ == "__main__":
    main()
