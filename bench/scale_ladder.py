"""Issue 23's scale ladder: the delivery path's costs on empty tables and on databases
``bench.datagen`` filled, measured side by side in one run (PostgreSQL + Redis).

    python -m bench.scale_ladder --database wh_ladder_1m --database wh_ladder_10m
    python -m bench.scale_ladder --size tiny --out /tmp/ladder.json     # empty only (CI)

An empty database (``wh_ladder_empty_<random>``, migrated, dropped at the end) is the
first rung; each ``--database`` (on the server of ``BENCH_POSTGRES_URL``) is another. They
are WRITTEN TO (webhooks added and removed, events saved, deliveries made, and last a
purge): pass copies (``createdb -T wh_scale_1m wh_ladder_1m``). Each figure is measured
on every rung before the next figure:

1. **fan-out**: one event whose type 1, 100 and 10,000 webhooks of a new tenant want,
   fanned out by the workers' own code (``outbox.fan_out_and_lease``, as
   ``dispatch.process_events`` calls it) — median time and the statements;
2. **host save**: paired saves of a bound model (one event) and its unbound twin, one
   transaction each (``bench.host``'s median of paired saves): the ratio;
3. **sweeper's poll**: one ``sweeper.sweep_once`` and the ``work_ahead`` check a scheduled
   sweep runs every second — median time, statements, and the plan of each SELECT;
4. **commit → arrival** at 10 events/s and **throughput** to a fast receiver: ``bench.run``'s
   latency and throughput (backlog) benchmarks, pointed at the rung's database;
5. **retention purge** (last: it deletes): ``webhooks.retention.purge`` for at most
   ``--purge-seconds``; the empty rung is first given 10,000 attempts by ``bench.datagen``
   so that it has something to purge.

Before the first figure, each rung's pending deliveries of active webhooks (datagen's
"waiting for a retry", to https://hooks.example.com) are made due tomorrow, so no worker
sends them anywhere; those of disabled webhooks stay due (held, as in production), and the
scheduled purge is put off, so a worker cannot purge in the middle of a figure.
Results: ``bench/results/scale_ladder.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/4")
#: The event type of the fan-out: one of the example platform's, which datagen's webhooks
#: choose like any other.
EVENT_TYPE = "attempt.submitted"
SIZES = {
    # name: (tiny, full)
    "widths": ((1, 10), (1, 100, 10_000)),
    "fan_out_repeat": (1, 5),
    "saves": (20, 500),
    "polls": (3, 20),
    "purge_seconds": (5, 60),
    "empty_purge_attempts": (600, 10_000),
    # Each figure on every rung, there and back.
    "rounds": (1, 2),
}


def size(name: str, tiny: bool):
    return SIZES[name][0 if tiny else 1]


class Statements:
    """Every statement run on the connection while active (an ``execute_wrapper``): its
    SQL and parameters, at the cost of a list append."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, object]] = []

    def __call__(self, execute, sql, params, many, context):
        self.seen.append((sql, params))
        return execute(sql, params, many, context)

    def names(self) -> list[str]:
        return [" ".join(sql.split())[:90] for sql, _ in self.seen]


def use(name: str) -> None:
    """Point the default connection at database ``name``."""
    from django.db import connection

    connection.close()
    connection.settings_dict["NAME"] = name


def estimates() -> dict:
    """Rows per table, the planner's estimate (a count would scan 10M rows)."""
    from django.db import connection

    tables = ["webhooks_deliveryattempt", "webhooks_delivery", "webhooks_event"]
    tables += ["webhooks_subscription"]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, GREATEST(reltuples, 0)::bigint FROM pg_class WHERE relname = ANY(%s)",
            [tables],
        )
        return {name.removeprefix("webhooks_"): n for name, n in cursor.fetchall()}


def prepare() -> dict:
    """Migrate; waiting events marked fanned out, pending deliveries of active webhooks due
    tomorrow, the purge put off."""
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", run_syncdb=True, verbosity=0)  # + the bench's models (no migrations)
    with connection.cursor() as cursor:
        # Events never fanned out (datagen's own users' ``user.registered``): a worker's
        # fan-out would take them along (up to a batch of waiting events) and owe them to
        # thousands of webhooks.
        cursor.execute(
            "UPDATE webhooks_event SET fanned_out_at = now() WHERE fanned_out_at IS NULL"
        )
        waiting = cursor.rowcount
        cursor.execute(
            "UPDATE webhooks_delivery SET next_attempt_at = now() + interval '1 day' "
            "WHERE status = 'pending' AND next_attempt_at < now() + interval '1 day' "
            "AND subscription_id IN (SELECT id FROM webhooks_subscription WHERE is_active)"
        )
        postponed = cursor.rowcount
        cursor.execute(
            "UPDATE django_q_schedule SET next_run = now() + interval '1 year' "
            "WHERE name = 'webhooks: purge'"
        )
        cursor.execute(
            "SELECT count(*) FROM webhooks_delivery d JOIN webhooks_subscription s "
            "ON s.id = d.subscription_id WHERE d.status = 'pending' AND NOT s.is_active"
        )
        held = cursor.fetchone()[0]
    return {
        "rows": estimates(),
        "events_marked_fanned_out": waiting,
        "postponed_pending": postponed,
        "held_of_disabled": held,
    }


# 1. Fan-out --------------------------------------------------------------------------------


def add_tenant(width: int):
    """A new Pro organisation with ``width`` webhooks that want ``EVENT_TYPE``."""
    from django.db import connection

    from example_project.organisations.models import Organisation
    from webhooks.models import EventType, Subscription
    from webhooks.signing import generate_secret

    org = Organisation.objects.create(name=f"Ladder {width}", slug=f"ladder-{uuid.uuid4().hex}")
    chosen = EventType.objects.get(name=EVENT_TYPE)
    subs = Subscription.objects.bulk_create(
        [
            Subscription(scope=org.scope, url=f"http://127.0.0.1:9/ladder/{n}", secret=secret)
            for n, secret in enumerate(generate_secret() for _ in range(width))
        ],
        batch_size=2000,
    )
    through = Subscription.event_types.through
    through.objects.bulk_create(
        [through(subscription_id=s.pk, eventtype_id=chosen.pk) for s in subs], batch_size=5000
    )
    with connection.cursor() as cursor:  # as autovacuum soon would: the planner sees them
        cursor.execute("ANALYZE webhooks_subscription, webhooks_subscription_event_types")
    return org


def remove_tenant(org) -> None:
    from django.db import connection

    scope = org.scope
    with connection.cursor() as cursor:
        mine = "SELECT id FROM webhooks_subscription WHERE scope = %s"
        cursor.execute(f"DELETE FROM webhooks_delivery WHERE subscription_id IN ({mine})", [scope])
        cursor.execute(
            f"DELETE FROM webhooks_subscription_event_types WHERE subscription_id IN ({mine})",
            [scope],
        )
        cursor.execute("DELETE FROM webhooks_subscription WHERE scope = %s", [scope])
        cursor.execute("DELETE FROM webhooks_event WHERE scope = %s", [scope])
    org.delete()


def fan_out(widths, repeat: int) -> dict:
    from unittest import mock

    from django.db import connection, transaction

    from webhooks import outbox
    from webhooks.conf import conf

    results = {}
    for width in widths:
        org = add_tenant(width)
        times, statements = [], []
        try:
            # The first is a warm-up; 10,000 deliveries take seconds: fewer of them.
            for n in range((repeat if width < 10_000 else min(repeat, 3)) + 1):
                with mock.patch("webhooks.outbox._after_commit"), transaction.atomic():
                    event = outbox.record_event(EVENT_TYPE, {"n": n}, scope=org.scope)
                recorded = Statements()
                with connection.execute_wrapper(recorded):
                    started = time.perf_counter()
                    # As a worker runs it: its events and up to a batch of others waiting.
                    _, made = outbox.fan_out_and_lease(
                        [event.pk], oldest_others=max(0, conf.BATCH_SIZE - 1)
                    )
                    elapsed = time.perf_counter() - started
                assert len(made) == width, (len(made), width)
                if n:
                    times.append(elapsed * 1000)
                    statements.append(recorded.names())
                with connection.cursor() as cursor:  # sent, as far as the next figures go
                    cursor.execute(
                        "UPDATE webhooks_delivery SET status = 'succeeded', lease_token = NULL, "
                        "leased_until = NULL, next_attempt_at = NULL WHERE event_id = %s",
                        [event.pk],
                    )
        finally:
            remove_tenant(org)
        results[str(width)] = {
            "median_ms": round(statistics.median(times), 2),
            "min_ms": round(min(times), 2),
            "max_ms": round(max(times), 2),
            "statements": len(statements[-1]),
            "statement_list": statements[-1],
        }
    with connection.cursor() as cursor:
        # What autovacuum does after so many deletes: without it the dead index entries
        # of these deliveries (pending, then sent, then deleted) are what the next
        # figures read, on every rung alike — the churn of this benchmark, not the size.
        cursor.execute("VACUUM ANALYZE webhooks_delivery, webhooks_event, webhooks_subscription")
    return results


# 2. The host's save ------------------------------------------------------------------------


def host_save(n: int) -> dict:
    from django.db import connection, transaction

    from bench import host
    from tests.testapp.models import Article, Unbound
    from webhooks import outbox

    for model in (Unbound, Article):  # warm up
        for i in range(min(50, n)):
            with transaction.atomic():
                model.objects.create(title=f"w{i}")
    outbox._fan_out_handoff.flush(5.0)
    result = host._paired_saves(n)
    with connection.cursor() as cursor:  # nobody wants them: as the fan-out would leave them
        cursor.execute(
            "UPDATE webhooks_event SET fanned_out_at = now() "
            "WHERE fanned_out_at IS NULL AND type = 'article.created' AND scope = ''"
        )
    return {k: round(v, 3) for k, v in result.items()}


# 3. The sweeper's poll ---------------------------------------------------------------------


def explain(sql: str, params) -> list[str]:
    """The plan of ``sql`` as run (EXPLAIN ANALYZE), in a transaction rolled back."""
    from django.db import connection, transaction

    class Undo(Exception):
        pass

    plan = []
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
            plan = [row[0] for row in cursor.fetchall()]
            raise Undo
    except Undo:
        pass
    return plan


def sweeper_poll(polls: int) -> dict:
    from datetime import timedelta

    from django.db import connection
    from django.utils import timezone

    from webhooks import sweeper
    from webhooks.conf import conf

    sweeps, checks, recorded = [], [], Statements()
    for n in range(polls + 1):  # the first is a warm-up
        recorded = Statements()
        with connection.execute_wrapper(recorded):
            started = time.perf_counter()
            report = sweeper.sweep_once()
            swept = time.perf_counter()
            sweeper.work_ahead(timezone.now() + timedelta(seconds=conf.SWEEP_DURATION))
            done = time.perf_counter()
        if n:
            sweeps.append((swept - started) * 1000)
            checks.append((done - swept) * 1000)
    plans = {}
    for sql, params in recorded.seen:
        if sql.lstrip().upper().startswith("SELECT"):
            plans[" ".join(sql.split())[:200]] = explain(sql, params)
    return {
        "sweep_once_median_ms": round(statistics.median(sweeps), 2),
        "sweep_once_max_ms": round(max(sweeps), 2),
        "work_ahead_median_ms": round(statistics.median(checks), 2),
        "poll_median_ms": round(
            statistics.median(s + c for s, c in zip(sweeps, checks, strict=True)), 2
        ),
        "statements": len(recorded.seen),
        "statement_list": recorded.names(),
        "last_report": report.__dict__,
        "plans": plans,
    }


# 4. Commit → arrival, throughput (real processes) --------------------------------------------


def system(database: str, tiny: bool) -> dict:
    """``bench.run``'s latency and throughput (backlog) benchmarks on this database, then
    the benchmark's webhooks (all-events, on 127.0.0.1) removed again."""
    from functools import partial

    from bench import run

    latency = run.bench_latency("postgres", tiny, database=database)
    drain = partial(
        run._system_run,
        "postgres",
        events=run.size("throughput_events", tiny),
        subs=3,
        ports=1,
        delay=0.0,
        webhooks=run.THROUGHPUT_WEBHOOKS,
        backlog=True,
        database=database,
    )
    remove_bench_webhooks()
    throughput = drain()
    remove_bench_webhooks()
    latency.pop("latencies_ms", None)
    return {"latency": latency, "throughput": throughput}


def remove_bench_webhooks() -> None:
    from webhooks.models import Subscription

    Subscription.objects.filter(scope="", url__startswith="http://127.0.0.1:").delete()


# 5. The retention purge --------------------------------------------------------------------


def purge(seconds: float) -> dict:
    from webhooks import removal, retention

    # The fan-out figure's tenants were deleted, and no worker ran their logs' deletion
    # task: the purge's first step would delete those logs (2,000 deliveries a transaction,
    # without the retention's checks), and the rung with the fewest rows to purge (empty)
    # would count them as retention. Done first, untimed: the figure is the retention's.
    removal.finish_deleted()
    transactions: list[float] = []
    started = time.perf_counter()
    report = retention.purge(
        time_limit=seconds, progress=lambda r: transactions.append(r.last_transaction_s * 1000)
    )
    elapsed = time.perf_counter() - started
    ordered = sorted(transactions) or [0.0]
    return {
        "seconds": round(elapsed, 2),
        "finished": report.finished,
        "deleted": {
            "attempts": report.attempts,
            "deliveries": report.deliveries,
            "events": report.events,
        },
        "attempts_per_s": round(report.attempts / elapsed) if elapsed else None,
        "deliveries_per_s": round(report.deliveries / elapsed) if elapsed else None,
        "transactions": report.batches,
        "transaction_ms_median": round(statistics.median(ordered), 1),
        "transaction_ms_p99": round(ordered[int(0.99 * (len(ordered) - 1))], 1),
        "transaction_ms_longest": round(max(ordered), 1),
    }


def seed_empty(attempts: int) -> dict:
    """Something for the empty rung's purge: datagen's shape, ``attempts`` attempts."""
    from django.db import connection

    from bench import datagen

    made = datagen.generate(attempts=attempts, webhooks=attempts // 10, tenants=10)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE django_q_schedule SET next_run = now() + interval '1 year'")
    return {"attempts": made.attempts, "deliveries": made.deliveries}


# -------------------------------------------------------------------------------------------


def admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(sql)


def flush_redis(queue: str) -> None:
    import redis

    r = redis.from_url(REDIS_URL, socket_connect_timeout=1)
    for key in r.scan_iter(f"*{queue}*"):
        r.delete(key)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", action="append", default=[], help="a rung (a copy!)")
    parser.add_argument("--size", choices=["tiny", "full"], default="full")
    parser.add_argument("--only", default="fan_out,host_save,sweeper,system,purge")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "scale_ladder.json"))
    args = parser.parse_args(argv)
    tiny = args.size == "tiny"
    only = args.only.split(",")

    empty = f"wh_ladder_empty_{uuid.uuid4().hex[:8]}"
    queue = f"ladder-{uuid.uuid4().hex[:8]}"  # this process's enqueues: never run, flushed
    base = PG_URL.rsplit("/", 1)[0]
    os.environ.update(
        DJANGO_SETTINGS_MODULE="bench.settings",
        DATABASE_URL=f"{base}/{empty}",
        REDIS_URL=REDIS_URL,
        Q_NAME=queue,
    )
    admin(f'CREATE DATABASE "{empty}"')
    rungs = [empty, *args.database]
    result = {
        "command": "python -m bench.scale_ladder " + " ".join(argv or sys.argv[1:]),
        "started_at": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "cpus": os.cpu_count(),
        "rungs": {name: {} for name in rungs},
    }
    try:
        import django

        django.setup()
        from django.conf import settings

        settings.DEBUG = False

        def each(figure: str, measure, rounds: int = 1) -> None:
            """``measure`` on every rung, in ``rounds`` rounds: there and back (empty, 1M,
            10M, 10M, 1M, empty…), so that the machine's drift falls on every rung alike."""
            if figure not in only:
                return
            for round_ in range(rounds):
                for name in rungs if round_ % 2 == 0 else rungs[::-1]:
                    use(name)
                    print(f"scale_ladder: {figure} on {name} …", file=sys.stderr, flush=True)
                    load = os.getloadavg()
                    figures = measure(name)
                    figures["at"] = time.strftime("%H:%M:%S UTC", time.gmtime())
                    figures["load"] = [round(x, 2) for x in load]
                    result["rungs"][name].setdefault(figure, []).append(figures)
                    save(args.out, result)

        only.append("prepare")  # always
        each("prepare", lambda name: prepare())
        rounds = size("rounds", tiny)
        widths, repeat = size("widths", tiny), size("fan_out_repeat", tiny)
        each("fan_out", lambda name: fan_out(widths, repeat), rounds)
        each("host_save", lambda name: host_save(size("saves", tiny)), rounds)
        each("sweeper", lambda name: sweeper_poll(size("polls", tiny)), rounds)
        each("system", lambda name: system(name, tiny), rounds)
        if "purge" in only:
            use(empty)
            result["empty_purge_seed"] = seed_empty(size("empty_purge_attempts", tiny))
        each("purge", lambda name: purge(size("purge_seconds", tiny)))
        result["finished_at"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        save(args.out, result)
    finally:
        from django.db import connection

        connection.close()
        admin(f'DROP DATABASE IF EXISTS "{empty}" WITH (FORCE)')
        flush_redis(queue)
    table(result)


def save(out: str, result: dict) -> None:
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")


def table(result: dict) -> None:
    """The figures, one line per figure, one column per rung (each round's, ", "-joined)."""

    def rounds(rung, figure, get):
        return ", ".join(str(get(r)) for r in rung.get(figure, []))

    rows = {
        "fan-out ms, 1/100/10k": (
            "fan_out",
            lambda r: "/".join(str(v["median_ms"]) for v in r.values() if isinstance(v, dict)),
        ),
        "host save ratio": ("host_save", lambda r: r["ratio"]),
        "sweeper poll ms": ("sweeper", lambda r: r["poll_median_ms"]),
        "latency p50/p99 ms": (
            "system",
            lambda r: "{p50_ms:.1f}/{p99_ms:.1f}".format(**r["latency"]),
        ),
        "throughput /s": ("system", lambda r: round(r["throughput"]["deliveries_per_s"])),
        "purge attempts/s": ("purge", lambda r: r["attempts_per_s"]),
    }
    rungs = result["rungs"]
    print("figure".ljust(24) + "".join(name[:30].ljust(32) for name in rungs))
    for label, (figure, get) in rows.items():
        print(label.ljust(24) + "".join(rounds(r, figure, get).ljust(32) for r in rungs.values()))


if __name__ == "__main__":
    main()
