"""A backlog drained after an outage: N events waited while the workers were stopped; a
real qcluster (4 workers) then delivers them to a fast receiver. PostgreSQL + Redis.

    python -m bench.backlog --events 1M [--tasks | --no-tasks] [--recycle 500]
    python -m bench.backlog --events 200 --out /tmp      # the size CI runs
    python -m bench.backlog --events 200k --database wh_backlog_10m  # on a copy of a data set

``--database``: an existing PostgreSQL database (a copy: ``createdb -T wh_scale_10m
wh_backlog_10m``; ``bench.datagen`` fills one), migrated and left in place, so the drain
runs beside months of other tenants' log. The backlog's events and webhook are the ones
without a tenant (the generator's all have one): every count is of those. The data set's
own work is put out of the way first, as the scale ladder does (``bench.backlog_db
prepare``): its receivers are not on 127.0.0.1.

Each event is owed to one delivery: one webhook (one receiver URL) takes them all, the
worst case for its rows (health hours, rate-limit turns) and for the per-endpoint cap.

Measured: deliveries per second for each minute of the drain (from the receiver's log,
and succeeded rows counted in the database every few seconds), the resident memory of
every process of the cluster (``/proc``, every ``--sample`` seconds), every event
delivered exactly once (distinct ``webhook-id``s at the receiver, doubled deliveries in
the database), nothing left pending, and EXPLAIN (ANALYZE, BUFFERS) of each hot statement
at the start, half-way and at the end (``bench.backlog_db plans``).

Writes ``bench/results/backlog-<events>.json`` (``--out`` elsewhere).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections import Counter
from pathlib import Path

from bench.harness import REDIS_URL, Backend, Processes, host, postgres_available, read_log
from bench.run import RESULTS, THROUGHPUT_WEBHOOKS

PAGE = 4096


def count(text: str) -> int:
    """``1M``, ``100k``, ``2500``."""
    text = text.strip().lower().replace("_", "")
    factor = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text.rstrip("km")) * factor)


# The cluster's processes and their memory -----------------------------------------------


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def processes(root: int) -> dict[int, dict]:
    """Every process under ``root`` (the ``manage.py qcluster`` we started): its resident
    memory (MB), threads and depth. django-q2's tree: the command, its sentinel, and under
    the sentinel the workers (spawned first), then the monitor and the pusher."""
    tree, out, todo = _children(), {}, [(root, 0)]
    while todo:
        pid, depth = todo.pop()
        try:
            with open(f"/proc/{pid}/status") as f:
                status = dict(line.split(":", 1) for line in f if ":" in line)
            out[pid] = {
                "rss_mb": int(status["VmRSS"].split()[0]) / 1024,
                "threads": int(status["Threads"]),
                "depth": depth,
            }
        except (OSError, KeyError):
            continue
        todo += [(child, depth + 1) for child in tree.get(pid, ())]
    return out


def monitor_and_pusher(sample: dict[int, dict], workers: int) -> set[int] | None:
    """The sentinel's two children spawned after its ``workers`` (the highest pids of the
    first full set; a recycled worker gets a new, higher one): None until all are up."""
    children = sorted(pid for pid, p in sample.items() if p["depth"] == 2)
    return set(children[workers:]) if len(children) >= workers + 2 else None


def workers_of(sample: dict[int, dict], helpers: set[int]) -> list[int]:
    return sorted(pid for pid, p in sample.items() if p["depth"] == 2 and pid not in helpers)


# The run -------------------------------------------------------------------------------


def run(
    events: int,
    *,
    tasks: bool,
    recycle: int,
    workers: int = 4,
    sample: float = 5.0,
    timeout: float = 7200,
    redis_url: str = REDIS_URL,
    admin_url: str | None = None,
    database: str | None = None,
) -> dict:
    import psycopg

    q_cluster = {"recycle": recycle}
    kwargs = {"admin_url": admin_url} if admin_url else {}
    b = Backend(
        "postgres",
        webhooks=THROUGHPUT_WEBHOOKS,
        q_cluster=q_cluster,
        workers=workers,
        redis_url=redis_url,
        **kwargs,
    )
    if database:
        b.name, b.existing = database, True
    else:
        b.name = "backlog_" + b.name.removeprefix("wh_bench_")
    b.create()
    try:
        with Processes(b.tmp) as p:
            log = b.tmp / "received.log"
            port = p.receiver(ports=1, log=log)[0]
            host(b.env(), "subscribe", f"http://127.0.0.1:{port}/hook/0")
            db = b.env()

            def django(*args, timeout=3600):
                return host(db, *args, module="bench.backlog_db", timeout=timeout)

            prepared = django("prepare") if database else None
            print(f"backlog: filling {events:,} events …", file=sys.stderr, flush=True)
            filled = django("fill", "--n", str(events), *(["--tasks"] if tasks else []))
            plans = {"start": django("plans")}
            load = {"start": os.getloadavg()}
            conn = psycopg.connect(b.database_url, autocommit=True)

            def succeeded() -> int:
                sql = (  # the backlog's (a data set's own are a tenant's)
                    "SELECT count(*) FROM webhooks_delivery WHERE status = 'succeeded' AND "
                    "subscription_id IN (SELECT id FROM webhooks_subscription WHERE scope = '')"
                )
                return conn.execute(sql).fetchone()[0]

            print("backlog: starting the cluster …", file=sys.stderr, flush=True)
            started = time.time()
            cluster = p.qcluster(b.env())
            samples = []  # (time, succeeded, {pid: process})
            helpers = None  # the monitor's and the pusher's pids
            halfway = None
            last_progress, last_done = time.time(), -1
            while True:
                time.sleep(sample)
                now, done = time.time(), succeeded()
                procs = processes(cluster.pid)
                helpers = helpers or monitor_and_pusher(procs, workers)
                if helpers:  # the cluster is up
                    samples.append((now, done, procs))
                if done != last_done:
                    last_progress, last_done = now, done
                print(f"  {now - started:7.0f} s  {done:>9,} succeeded", file=sys.stderr)
                if halfway is None and done >= events // 2:
                    halfway = django("plans")  # while the workers go on
                    load["halfway"] = os.getloadavg()
                if done >= events:
                    break
                if now - started > timeout or now - last_progress > 300:
                    print("backlog: no progress, giving up", file=sys.stderr)
                    break
            finished = time.time()
            load["end"] = os.getloadavg()
            time.sleep(2)  # the last recordings commit; nothing more should arrive
            p.stop(cluster)
            plans["halfway"] = halfway
            plans["end"] = django("plans")
            checked = django("check")
            conn.close()
            received = read_log(log)
    finally:
        b.drop()
    return summarise(
        events=events,
        tasks=tasks,
        recycle=recycle,
        workers=workers,
        filled=filled,
        started=started,
        finished=finished,
        samples=samples,
        received=received,
        checked=checked,
        plans=plans,
        load=load,
        helpers=helpers or set(),
        prepared=prepared,
    )


def summarise(*, events, started, finished, samples, received, checked, plans, **rest) -> dict:
    ok = [r for r in received if r[3] == 204]
    ids = Counter(r[2] for r in ok)
    first = min((r[0] for r in ok), default=started)
    # Per minute of the drain, from the first arrival: what the receiver got.
    per_minute = Counter(int((r[0] - first) // 60) for r in ok)
    minutes = [
        {"minute": m + 1, "deliveries": per_minute.get(m, 0)}
        for m in range(max(per_minute, default=-1) + 1)
    ]
    last_arrival = max((r[0] for r in ok), default=first)
    for row in minutes:  # the last minute is partial
        seconds = min(60.0, last_arrival - first - (row["minute"] - 1) * 60)
        row["per_s"] = row["deliveries"] / seconds if seconds > 0 else 0.0
    # The database's count, per minute from the cluster's start.
    db_minutes, previous = [], (started, 0)
    for t, done, _ in samples:
        if t - previous[0] >= 60 or (t, done) == samples[-1][:2]:
            db_minutes.append(
                {
                    "until_s": round(t - started),
                    "succeeded": done,
                    "per_s": (done - previous[1]) / (t - previous[0]),
                }
            )
            previous = (t, done)
    # Memory: each worker process at its first, middle and last sample.
    memory: dict[int, list] = {}
    for t, done, procs in samples:
        for pid in workers_of(procs, rest["helpers"]):
            memory.setdefault(pid, []).append((round(t - started), done, procs[pid]["rss_mb"]))
    rss = []
    for pid, points in memory.items():
        start, mid, end = points[0], points[len(points) // 2], points[-1]
        delivered = end[1] - start[1]
        rss.append(
            {
                "pid": pid,
                "samples": len(points),
                "start": start,
                "mid": mid,
                "end": end,
                "growth_mb": end[2] - start[2],
                # Growth per 1,000 deliveries of the whole cluster while it lived.
                "mb_per_1000_deliveries": (end[2] - start[2]) / delivered * 1000
                if delivered
                else None,
            }
        )
    others = {}
    if samples:
        procs = samples[-1][2]
        chosen = set(workers_of(procs, rest["helpers"]))
        others = {pid: p for pid, p in procs.items() if pid not in chosen}
    seconds = last_arrival - first
    return {
        "benchmark": "backlog",
        "events": events,
        "webhooks": 1,
        "mode": "fan-out tasks in the broker" if rest["tasks"] else "no tasks: the sweeper",
        "recycle": rest["recycle"],
        "workers": rest["workers"],
        "settings": THROUGHPUT_WEBHOOKS,
        "fill": rest["filled"],
        "prepared": rest["prepared"],
        "received_2xx": len(ok),
        "distinct_webhook_ids": len(ids),
        "duplicates": sum(c - 1 for c in ids.values() if c > 1),
        "lost": events - len(ids),
        "database": checked,
        "drain_seconds": seconds,
        "deliveries_per_s": len(ids) / seconds if seconds else 0.0,
        "cluster_start_to_first_arrival_s": first - started,
        "cluster_start_to_last_succeeded_s": finished - started,
        "per_minute": minutes,
        "per_minute_database": db_minutes,
        "worker_rss": rss,
        "other_processes_at_end": others,
        "rss_series": {pid: points for pid, points in memory.items()},
        "plans": plans,
        "seq_scans_of_big_tables": {
            when: (p or {}).get("seq_scans_of_big_tables") for when, p in plans.items()
        },
        "load_average": rest["load"],
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=count, default=count("100k"))
    parser.add_argument(
        "--tasks",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the fan-out tasks waited in the broker (--no-tasks: lost, the sweeper finds them)",
    )
    parser.add_argument(
        "--recycle", type=int, default=10**9, help="django-q2's recycle (tasks per worker)"
    )
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--sample", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--database", help="an existing PostgreSQL database to run on (a copy of a data set)"
    )
    args = parser.parse_args(argv)
    if not postgres_available():
        sys.exit("bench.backlog needs PostgreSQL and Redis (BENCH_POSTGRES_URL, BENCH_REDIS_URL)")
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    result = run(
        args.events, tasks=args.tasks, recycle=args.recycle, workers=args.workers,
        sample=args.sample, database=args.database,
    )  # fmt: skip
    result["when"] = when
    result["data_set"] = args.database or "empty"
    result["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version()}
    args.out.mkdir(parents=True, exist_ok=True)
    on = f"-on-{args.database}" if args.database else ""
    path = args.out / f"backlog-{args.events}{'' if args.tasks else '-sweeper'}{on}.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {path}", file=sys.stderr)
    brief = {k: result[k] for k in ("events", "lost", "duplicates", "deliveries_per_s")}
    print(json.dumps({**brief, "seq_scans": result["seq_scans_of_big_tables"]}))


if __name__ == "__main__":
    main()
