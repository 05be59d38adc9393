"""The host application of benchmarks and chaos tests: a Django process on the bench
database that subscribes receivers, saves bound models, and reads delivery state.

    python -m bench.host subscribe URL… --secrets FILE
    python -m bench.host create --n 200 [--rate 20] [--rollback-every 10] [--wait N]
    python -m bench.host overhead --n 2000 --subs 0,1,10,100
    python -m bench.host status

Each command prints one JSON line (the last line of its output).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from functools import partial
from urllib.parse import urlsplit

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
django.setup()

from django.db import connection, transaction  # noqa: E402
from django.db.models import Count  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from tests.testapp.models import Article, Unbound  # noqa: E402
from webhooks.models import Delivery, Subscription  # noqa: E402
from webhooks.signing import generate_secret  # noqa: E402


def subscribe(args) -> dict:
    secrets = {}
    for url in args.urls:
        secret = generate_secret()
        Subscription.objects.create(url=url, all_events=True, secret=secret)
        secrets[urlsplit(url).path] = secret
    if args.secrets:
        with open(args.secrets, "w") as f:
            json.dump(secrets, f)
    return {"subscriptions": len(args.urls)}


class Rollback(Exception):
    pass


def create(args) -> dict:
    committed, rolled_back, failed, durations, commit_times = [], [], [], [], {}
    if args.start_at:  # Django is set up: start at the time the caller measures from
        time.sleep(max(0.0, args.start_at - time.time()))
    cpu0 = time.process_time()
    started = time.time()
    interval = 1.0 / args.rate if args.rate else 0.0
    for n in range(args.n):
        if interval:
            delay = started + n * interval - time.time()
            if delay > 0:
                time.sleep(delay)
        roll_back = bool(args.rollback_every) and n % args.rollback_every == args.rollback_every - 1
        t0 = time.perf_counter()
        try:
            with transaction.atomic():
                # Registered first, so it runs first after COMMIT (before the enqueue).
                transaction.on_commit(lambda n=n: commit_times.__setitem__(n, time.time()))
                Article.objects.create(title=f"{args.prefix}{n}")
                if roll_back:
                    raise Rollback
            committed.append(n)
        except Rollback:
            rolled_back.append(n)
        except Exception as exc:  # noqa: BLE001 - counted: the chaos suite asserts none
            failed.append(f"{n}: {type(exc).__name__}: {exc}"[:200])
        durations.append(time.perf_counter() - t0)
    created = time.time()
    result = {
        "cpu_seconds_creating": time.process_time() - cpu0,
        "committed": committed,
        "rolled_back": rolled_back,
        "failed_saves": failed,
        "started": started,
        "created": created,
        "save_seconds_max": max(durations, default=0),
        "save_seconds_mean": statistics.fmean(durations) if durations else 0,
        "save_seconds_over_1s": sum(d > 1 for d in durations),
        "commit_times": commit_times,
    }
    if args.wait:
        expected = args.wait
        deadline = time.monotonic() + args.timeout
        done = 0
        succeeded = Delivery.objects.filter(status="succeeded")
        if args.since:  # a database with deliveries of its own: count only this run's
            since = datetime.fromtimestamp(args.since, tz=UTC)
            succeeded = succeeded.filter(created_at__gte=since)
        while time.monotonic() < deadline:
            done = succeeded.count()
            if done >= expected:
                break
            time.sleep(args.poll)
        result["done"] = time.time()
        result["succeeded"] = done
    return result


def _timed_saves(model, n: int, *, atomic: bool) -> tuple[float, float]:
    """Seconds of wall clock and of the process's CPU (every thread) for ``n`` saves, the
    background enqueue of the last ones included: the CPU time does not follow the disk's
    fsync latency, which makes the wall clock of a commit swing from run to run."""
    from webhooks import outbox

    t0, cpu0 = time.perf_counter(), time.process_time()
    for i in range(n):
        if atomic:  # one host transaction per save, as a view under ATOMIC_REQUESTS
            with transaction.atomic():
                model.objects.create(title=f"t{i}")
        else:  # autocommit: Django commits each INSERT on its own
            model.objects.create(title=f"t{i}")
    outbox._fan_out_handoff.flush(5.0)  # so no push of these lands in the next timing
    return time.perf_counter() - t0, time.process_time() - cpu0


def _paired_saves(n: int) -> dict:
    """One unbound and one bound save in turn, each timed on its own: the medians are
    what a request waits for when nothing else on the machine gets in the way (on a busy
    machine the totals above swing by tens of percent from run to run). The background
    enqueue thread is let finish between saves, untimed, so its push does not land in
    the next save (the totals above include that CPU time)."""
    from webhooks import outbox

    bound, unbound = [], []
    for i in range(n):
        for model, times in ((Unbound, unbound), (Article, bound)):
            t0 = time.perf_counter()
            with transaction.atomic():
                model.objects.create(title=f"p{i}")
            times.append(time.perf_counter() - t0)
            outbox._fan_out_handoff.flush(5.0)
    b, u = statistics.median(bound), statistics.median(unbound)
    return {"bound_us_per_save": b * 1e6, "unbound_us_per_save": u * 1e6, "ratio": b / u}


def _statements(model) -> dict:
    """What one save of ``model`` in a transaction sends to the database and the broker:
    inside the host's transaction, after its commit in the host's thread (what the request
    waits for), and from this process's background enqueue thread."""
    import threading
    from unittest import mock

    from webhooks import outbox

    pushes = []
    broker = outbox._get_broker()
    real_enqueue = broker.enqueue

    def recorded_enqueue(task):
        where = "host" if threading.current_thread() is threading.main_thread() else "background"
        pushes.append((where, f"{type(broker).__name__} broker: enqueue"))
        return real_enqueue(task)

    with mock.patch.object(broker, "enqueue", recorded_enqueue):
        with CaptureQueriesContext(connection) as captured, transaction.atomic():
            model.objects.create(title="count")
        outbox._fan_out_handoff.flush(5.0)
    sql = [q["sql"] for q in captured.captured_queries]
    commit = next((i for i, q in enumerate(sql) if q.upper().startswith("COMMIT")), len(sql) - 1)
    return {
        "in_transaction": [q[:60] for q in sql[: commit + 1]],
        "after_commit_host": [q[:60] for q in sql[commit + 1 :]]
        + [what for where, what in pushes if where == "host"],
        "after_commit_background": [what for where, what in pushes if where == "background"],
    }


def overhead(args) -> dict:
    rows = []
    subs_counts = [int(s) for s in args.subs.split(",")]
    for subs in subs_counts:
        Subscription.objects.all().delete()
        for i in range(subs):
            Subscription.objects.create(url=f"http://127.0.0.1:9/hook/{i}", all_events=True)
        bound, unbound = _statements(Article), _statements(Unbound)
        rows.append(
            {
                "subscriptions": subs,
                "bound": bound,
                "unbound": unbound,
                "extra_in_transaction": len(bound["in_transaction"])
                - len(unbound["in_transaction"]),
                "extra_after_commit_host": len(bound["after_commit_host"])
                - len(unbound["after_commit_host"]),
                "inserts_bound": [
                    q.split('"')[1] for q in bound["in_transaction"] if q.startswith("INSERT")
                ],
            }
        )
    result = {"n": 0, "subscriptions_during_timing": subs_counts[-1], "queries": rows}
    if not args.n:  # the statements only (bench/statements.py)
        return result
    # Timed as in production: with DEBUG on, Django would also log every query (more work
    # per statement, so more for the bound save).
    from django.conf import settings

    settings.DEBUG = False
    rounds = max(5, min(20, args.n // 50))
    for mode, atomic in (("atomic", True), ("autocommit", False)):
        bound, bare = (
            partial(_timed_saves, Article, atomic=atomic),
            partial(_timed_saves, Unbound, atomic=atomic),
        )
        result[mode] = _side_by_side(bound, bare, args.n, rounds)
    result["n"] = rounds * (args.n // rounds)
    result["ratio"] = result["atomic"]["ratio"]
    result["atomic_median"] = _paired_saves(args.n)
    bare = partial(_timed_saves, Unbound, atomic=True)
    # Where the extra time goes: the same, with whatever follows the commit switched off.
    from unittest import mock

    # A plain function, not a MagicMock: recording its calls would cost more than what it
    # stands in for (20–40 µs a call).
    with mock.patch("webhooks.outbox._after_commit", lambda event_id, using: None):
        result["atomic_without_enqueue"] = _side_by_side(
            partial(_timed_saves, Article, atomic=True), bare, args.n, rounds
        )
    # The floor of any design that writes the event in the host's transaction.
    result["atomic_floor"] = _side_by_side(_timed_floor_saves, bare, args.n, rounds)
    return result


def _side_by_side(saves, bare_saves, n: int, rounds: int) -> dict:
    """``saves`` against ``bare_saves`` (each ``(n) -> (wall, cpu)`` seconds), in alternating
    rounds after a warm-up. Each round's ratio is also taken against the bare saves of the
    same moment: the machine's speed drifts by tens of per cent within a run here (the
    disk's fsync, other VMs), and the median of those ratios sees little of it."""
    saves(min(200, n))
    bare_saves(min(200, n))
    totals = {saves: [0.0, 0.0], bare_saves: [0.0, 0.0]}
    per_round = []
    for _ in range(rounds):
        timings = {}
        for timed, total in totals.items():
            timings[timed] = wall, cpu = timed(n // rounds)
            total[0] += wall
            total[1] += cpu
        per_round.append([a / b for a, b in zip(timings[saves], timings[bare_saves], strict=True)])
    done = rounds * (n // rounds)
    (wall, cpu), (bare_wall, bare_cpu) = totals[saves], totals[bare_saves]
    return {
        "bound_us_per_save": wall / done * 1e6,
        "unbound_us_per_save": bare_wall / done * 1e6,
        "ratio": wall / bare_wall,
        "bound_cpu_us_per_save": cpu / done * 1e6,
        "unbound_cpu_us_per_save": bare_cpu / done * 1e6,
        "cpu_ratio": cpu / bare_cpu,
        "rounds": rounds,
        "ratio_median_of_rounds": statistics.median(r[0] for r in per_round),
        "cpu_ratio_median_of_rounds": statistics.median(r[1] for r in per_round),
    }


FLOOR_TABLE = "bench_outbox_floor"


def _timed_floor_saves(n: int) -> tuple[float, float]:
    """A bare save plus one plain INSERT of an event's row (the same columns and payload as
    the Article's event) into a table without a single index, through the same connection
    in the same transaction: what writing the event in the host's transaction costs at the
    very least, whatever the code around it."""
    from django.utils import timezone

    from webhooks.ids import uuid7

    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {FLOOR_TABLE} (id varchar(36), type varchar(100), "
            "data text, scope varchar(100), source_model varchar(100), source_id varchar(100), "
            "occurred_at varchar(40))"
        )
    insert = f"INSERT INTO {FLOOR_TABLE} VALUES (%s, %s, %s, %s, %s, %s, %s)"
    t0, cpu0 = time.perf_counter(), time.process_time()
    for i in range(n):
        with transaction.atomic():
            row = Unbound.objects.create(title=f"t{i}")
            data = json.dumps({"id": row.pk, "title": row.title, "tenant": "", "status": "draft"})
            with connection.cursor() as cursor:
                cursor.execute(
                    insert,
                    (
                        str(uuid7()),
                        "article.created",
                        data,
                        "",
                        "testapp.article",
                        str(row.pk),
                        timezone.now().isoformat(),
                    ),
                )
    return time.perf_counter() - t0, time.process_time() - cpu0


def status(args) -> dict:
    by_status = dict(Delivery.objects.values_list("status").annotate(c=Count("id")))
    return {"deliveries": by_status}


def report(args) -> dict:
    """Per webhook: its deliveries by status, and per delivery the attempts made and the
    seconds from the first to the last (what "failed on schedule" is measured by)."""
    from django.db.models import Max, Min

    from webhooks.models import DeliveryAttempt

    out = {}
    for sub in Subscription.objects.all():
        rows = (
            Delivery.objects.filter(subscription=sub)
            .annotate(n=Count("attempts"), first=Min("attempts__created_at"))
            .annotate(last=Max("attempts__created_at"))
            .values("status", "n", "first", "last")
        )
        kinds = DeliveryAttempt.objects.filter(delivery__subscription=sub).values_list("error_kind")
        out[sub.url] = {
            "active": sub.is_active,
            "statuses": dict(Counter(r["status"] for r in rows)),
            "attempts": sorted(Counter(r["n"] for r in rows).items()),
            "longest_span": max(
                ((r["last"] - r["first"]).total_seconds() for r in rows if r["first"]),
                default=0,
            ),
            "error_kinds": dict(Counter(k for (k,) in kinds)),
            "bodies_with_raw_nul": sum(
                "\x00" in body
                for body in DeliveryAttempt.objects.filter(delivery__subscription=sub).values_list(
                    "response_body", flat=True
                )
            ),
        }
    return out


def attempts(args) -> dict:
    """Per webhook URL, per delivery: the event's ``data.title``, the delivery's status and
    each automatic attempt as [number, start, end] (Unix seconds). An attempt is recorded
    when its request ends (``created_at``); it started ``duration_ms`` before."""
    from webhooks.models import DeliveryAttempt

    out: dict = {}
    deliveries = Delivery.objects.values_list("pk", "subscription__url", "event__data", "status")
    rows = {pk: {"title": (data or {}).get("title", ""), "status": status, "attempts": []}
            for pk, url, data, status in deliveries}  # fmt: skip
    for pk, url, *_ in deliveries:
        out.setdefault(url, []).append(rows[pk])
    for delivery_id, number, ended, ms in DeliveryAttempt.objects.filter(
        trigger=DeliveryAttempt.Trigger.AUTOMATIC
    ).values_list("delivery_id", "number", "created_at", "duration_ms"):
        end = ended.timestamp()
        rows[delivery_id]["attempts"].append([number, end - ms / 1000, end])
    for row in rows.values():
        row["attempts"].sort()
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("subscribe")
    s.add_argument("urls", nargs="+")
    s.add_argument("--secrets", default="")
    c = sub.add_parser("create")
    c.add_argument("--n", type=int, required=True)
    c.add_argument("--rate", type=float, default=0.0, help="events per second (0: flat out)")
    c.add_argument("--rollback-every", type=int, default=0)
    c.add_argument("--prefix", default="")
    c.add_argument("--start-at", type=float, default=0.0, help="wall time to start saving at")
    c.add_argument("--wait", type=int, default=0, help="wait for this many succeeded deliveries")
    c.add_argument("--timeout", type=float, default=300)
    c.add_argument("--poll", type=float, default=0.05)
    c.add_argument("--since", type=float, default=0.0, help="count deliveries made since (Unix s)")
    o = sub.add_parser("overhead")
    o.add_argument("--n", type=int, default=2000)
    o.add_argument("--subs", default="0,1,10,100")
    sub.add_parser("status")
    sub.add_parser("report")
    sub.add_parser("attempts")
    args = p.parse_args(argv)
    commands = {
        "subscribe": subscribe,
        "create": create,
        "overhead": overhead,
        "status": status,
        "report": report,
        "attempts": attempts,
    }
    result = commands[args.cmd](args)
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
