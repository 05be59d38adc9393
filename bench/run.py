"""The benchmarks of docs/benchmarks.md, on SQLite + ORM broker and PostgreSQL + Redis.

    python -m bench.run all                 # every benchmark, full size, then the plots
    python -m bench.run overhead|throughput|slow|latency|scaleout|statements|observability|portal
                        [--size tiny] [--backends sqlite] [--out DIR]

Each benchmark writes ``bench/results/<name>.json`` (``<name>-tiny.json`` at the tiny size
CI uses). PostgreSQL + Redis is skipped, with a note in the JSON, when the servers of
``BENCH_POSTGRES_URL`` / ``BENCH_REDIS_URL`` are not reachable.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from functools import partial
from pathlib import Path

from bench import costs
from bench.harness import Processes, backend, host, postgres_available, read_log, wait_until

RESULTS = Path(__file__).resolve().parent / "results"

GOALS = {
    "overhead": "bound/unbound save time ≤ 1.5, exactly one extra INSERT per event",
    "throughput": "≥ 0.5 × a plain requests.Session loop on PostgreSQL + Redis, ≥ 0.35 on SQLite",
    "slow": "≥ 300 deliveries/s to one endpoint answering in 200 ms (or a documented setting)",
    "latency": "PostgreSQL + Redis: p50 ≤ 8 ms, p99 ≤ 30 ms; SQLite + outbox broker: p50 ≤ 100 ms",
    "scaleout": "3 qcluster hosts in their own netns: 0 lost, 0 duplicates, the limit named",
    "statements": "every SQL statement per delivery counted and named (docs/benchmarks.md)",
    "observability": "metrics and tracing on: throughput and commit → arrival p50 within 5 %",
    "portal": "every customer-portal page ≤ 200 ms server time with 100,000 attempts",
}

SIZES = {
    # name: (tiny, full)
    "overhead_saves": (50, 1000),
    "throughput_events": (10, 1000),
    "slow_events": (6, 400),
    "latency_events": (10, 300),
    "scaleout_events": (10, 1000),
    "statements_events": (10, 300),
    # Drains long enough (9,000 deliveries, several seconds) that starting the cluster
    # does not decide the figure.
    "observability_events": (10, 3000),
    # Attempts of the one customer whose portal pages are timed.
    "portal_attempts": (300, 100_000),
}

# What the throughput runs tune (documented in docs/benchmarks.md).
THROUGHPUT_WEBHOOKS = {
    "BATCH_SIZE": 100,
    "MAX_CONCURRENCY": 16,
    "MAX_CONCURRENCY_PER_ENDPOINT": 16,
}
#: What one slow endpoint needs for ≥ 300/s at 200 ms: ≥ 60 requests in flight to it, so
#: 32 per worker (4 workers). The default is 4 per worker: a customer's endpoint gets at
#: most 4 × workers concurrent requests unless the operator raises it.
ONE_SLOW_ENDPOINT_WEBHOOKS = {
    "BATCH_SIZE": 200,
    "MAX_CONCURRENCY": 32,
    "MAX_CONCURRENCY_PER_ENDPOINT": 32,
    "TIMEOUT": 5.0,
}
SLOW_WEBHOOKS = {
    "BATCH_SIZE": 200,
    "MAX_CONCURRENCY": 64,
    "MAX_CONCURRENCY_PER_ENDPOINT": 16,
    "TIMEOUT": 5.0,
}


def size(name: str, tiny: bool) -> int:
    return SIZES[name][0 if tiny else 1]


def percentile(values, p: float) -> float:
    values = sorted(values)
    if not values:
        return float("nan")
    k = (len(values) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def on(database: str | None) -> dict:
    """``backend()``'s arguments for running on an existing database (kept), or none."""
    return {"name": database, "existing": True} if database else {}


# 1. Host overhead ------------------------------------------------------------------------


def bench_overhead(kind: str, tiny: bool) -> dict:
    n = size("overhead_saves", tiny)
    with backend(kind) as b:
        return host(b.env(), "overhead", "--n", str(n), "--subs", "0,1,10,100")


# 2. Throughput to a fast receiver ----------------------------------------------------------


def _system_run(
    kind: str,
    *,
    events: int,
    subs: int,
    ports: int,
    delay: float,
    webhooks: dict,
    workers: int = 4,
    timeout: float = 300,
    backlog: bool = False,
    extra_env: dict | None = None,
    database: str | None = None,
) -> dict:
    """Deliver ``events`` × ``subs`` through real processes; deliveries per second.

    ``backlog``: the events are saved before the cluster starts, and the rate is timed
    from the first arrival at the receiver to the last delivery recorded as succeeded:
    what the workers can do. Otherwise the host saves them flat out while the workers
    deliver, timed from the first save: the whole system, host included.

    ``database``: run on this existing PostgreSQL database (kept) instead of a new one.
    """
    with backend(
        kind, webhooks=webhooks, workers=workers, extra_env=extra_env or {}, **on(database)
    ) as b:
        pg = (b.admin_url, b.name) if kind == "postgres" else None
        with Processes(b.tmp) as p:
            log = b.tmp / "received.log"
            port_list = p.receiver(ports=ports, delay=delay, log=log)
            urls = [f"http://127.0.0.1:{port_list[i % ports]}/hook/{i}" for i in range(subs)]
            host(b.env(), "subscribe", *urls)
            writes_before = costs.table_writes(b.database_url) if pg else {}
            expected = events * subs
            wait = ["--wait", str(expected), "--timeout", str(timeout), "--poll", "0.02"]
            wait += ["--since", str(time.time())]  # this run's deliveries, not what was there
            sampler = costs.CpuSampler({"receiver": p.procs[-1]}, pg=pg)
            if backlog:
                saved = host(b.env(), "create", "--n", str(events))
                sampler.add("workers", p.qcluster(b.env()))
                sampler.start()
                run = host(b.env(), "create", "--n", "0", *wait)
                run["created"] = saved["created"]
                wait_until(lambda: read_log(log), 10)
                received = read_log(log)
                started = min((r[0] for r in received), default=run["done"])
            else:
                sampler.add("workers", p.qcluster(b.env()))
                sampler.start()
                time.sleep(3)  # the cluster's workers are up
                run = host(b.env(), "create", "--n", str(events), *wait)
                received = read_log(log)
                started = run["started"]
            sampler.stop()
        # Every process has exited, so PostgreSQL has every backend's counts.
        writes = {}
        if pg:
            writes = costs.writes_between(writes_before, costs.table_writes(b.database_url))
        ok = [r for r in received if r[3] == 204]
        seconds = run["done"] - started
        cpu = sampler.between(started, run["done"])
        if not backlog:  # the host's saves (its CPU is not sampled: it is not our child)
            cpu["host_saving"] = run["cpu_seconds_creating"]
        result = {
            "mode": "backlog" if backlog else "host saving meanwhile",
            "events": events,
            "subscriptions": subs,
            "endpoints": ports,
            "receiver_delay_ms": delay * 1000,
            "deliveries": expected,
            "succeeded": run["succeeded"],
            "received_2xx": len(ok),
            "duplicates": len(ok) - len({r[2] for r in ok}),
            "seconds": seconds,
            "deliveries_per_s": run["succeeded"] / seconds if seconds else 0,
            "workers": workers,
            "settings": webhooks,
            # Issue 23: CPU seconds in the timed window, rows over the whole run (PostgreSQL).
            "cpu_seconds": cpu,
            "rows_written": writes,
            "per_delivery": costs.per_delivery(cpu, writes, run["succeeded"]),
        }
        if not backlog:
            result["host_events_per_s"] = events / (run["created"] - run["started"])
        return result


def plain_requests_loop(n: int) -> dict:
    """The ceiling: one process, one requests.Session, the same bodies, one after another."""
    import requests

    with Processes(Path("/tmp")) as p:
        port = p.receiver(ports=1)[0]
        url = f"http://127.0.0.1:{port}/hook/0"
        body = json.dumps(
            {
                "id": "0" * 32,
                "type": "article.created",
                "timestamp": "2026-01-01T00:00:00+00:00",
                "data": {"id": 1, "title": "0", "status": "draft"},
            },
            separators=(",", ":"),
        ).encode()
        headers = {
            "Content-Type": "application/json",
            "webhook-id": "msg_x",
            "webhook-timestamp": "1",
            "webhook-signature": "v1," + "A" * 44,
        }
        with requests.Session() as s:
            for _ in range(min(50, n)):
                s.post(url, data=body, headers=headers, timeout=5)
            t0 = time.perf_counter()
            for _ in range(n):
                s.post(url, data=body, headers=headers, timeout=5).raise_for_status()
            seconds = time.perf_counter() - t0
    return {"requests": n, "seconds": seconds, "requests_per_s": n / seconds}


def bench_throughput(kind: str, tiny: bool) -> dict:
    events = size("throughput_events", tiny)
    run = partial(_system_run, kind, events=events, subs=3, ports=1, delay=0.0)
    return {
        **run(webhooks=THROUGHPUT_WEBHOOKS, backlog=True),
        "host_saving_meanwhile": run(webhooks=THROUGHPUT_WEBHOOKS),
    }


# 3. Throughput to slow receivers ----------------------------------------------------------


def bench_slow(kind: str, tiny: bool) -> dict:
    events = size("slow_events", tiny)
    delays = [0.2] if tiny else [0.05, 0.1, 0.2]
    runs = [
        _system_run(
            kind, events=events, subs=10, ports=10, delay=d, webhooks=SLOW_WEBHOOKS, backlog=True
        )
        for d in delays
    ]
    # One customer's endpoint answering in 200 ms: what the per-endpoint cap allows, with
    # the defaults and with the setting that gets past 300/s.
    one_endpoint = [
        _system_run(
            kind, events=events, subs=10, ports=1, delay=0.2, webhooks=webhooks, backlog=True
        )
        for webhooks in ({}, ONE_SLOW_ENDPOINT_WEBHOOKS)
    ]
    return {"runs": runs, "one_endpoint": one_endpoint}


# 4. Latency commit → receiver --------------------------------------------------------------


def bench_latency(
    kind: str, tiny: bool, *, extra_env: dict | None = None, database: str | None = None
) -> dict:
    events = size("latency_events", tiny)
    rate = 10.0
    with backend(kind, extra_env=extra_env or {}, **on(database)) as b, Processes(b.tmp) as p:
        log = b.tmp / "received.log"
        port = p.receiver(ports=1, log=log)[0]
        host(b.env(), "subscribe", f"http://127.0.0.1:{port}/hook/0")
        p.qcluster(b.env())
        time.sleep(3)
        since = str(time.time())
        run = host(
            b.env(),
            "create",
            "--n",
            str(events),
            "--rate",
            str(rate),
            "--wait",
            str(events),
            "--timeout",
            "120",
            "--since",
            since,
        )
        wait_until(lambda: len(read_log(log)) >= events, 10)
        arrivals = {}
        for arrived, _path, _id, _status, _ok, title in read_log(log):
            arrivals.setdefault(title, arrived)
        latencies = [
            (arrivals[str(n)] - t) * 1000
            for n, t in ((int(k), v) for k, v in run["commit_times"].items())
            if str(n) in arrivals
        ]
    return {
        "events": events,
        "rate_per_s": rate,
        "received": len(latencies),
        "p50_ms": percentile(latencies, 50),
        "p90_ms": percentile(latencies, 90),
        "p99_ms": percentile(latencies, 99),
        "max_ms": max(latencies, default=float("nan")),
        # The first event of a fresh host process and cluster: its share of the set-up.
        "first_event_ms": latencies[0] if latencies else float("nan"),
        "mean_ms": statistics.fmean(latencies) if latencies else float("nan"),
        "latencies_ms": [round(x, 2) for x in latencies],
    }


# 5. Scale-out: 1, 2, 3 qcluster hosts in network namespaces -----------------------------------


def bench_scaleout(kind: str, tiny: bool) -> dict:
    if kind != "postgres":
        return {"skipped": "hosts on other machines share PostgreSQL + Redis, not a SQLite file"}
    from bench import scaleout

    return scaleout.run(
        events=size("scaleout_events", tiny),
        webhooks=THROUGHPUT_WEBHOOKS,
        probe_n=200 if tiny else 2000,
    )


# 6. SQL statements per delivery ------------------------------------------------------------


def bench_statements(kind: str, tiny: bool) -> dict:
    from bench import statements

    events = size("statements_events", tiny)
    return statements.measure(kind, events=events, webhooks=THROUGHPUT_WEBHOOKS)


# 7. What metrics and tracing cost ------------------------------------------------------------


def observability_env(tmp: Path, on: bool) -> dict:
    """Metrics and tracing off, or on as production runs them: ``bench.settings`` then
    configures the OpenTelemetry SDK (batching spans to an exporter that drops them) and
    every process writes its Prometheus samples to a shared multiprocess directory."""
    if not on:
        return {"BENCH_METRICS": "0"}
    directory = tmp / f"prometheus-{uuid.uuid4().hex[:8]}"
    directory.mkdir(parents=True)
    return {"BENCH_METRICS": "1", "BENCH_TRACING": "1", "PROMETHEUS_MULTIPROC_DIR": str(directory)}


def bench_observability(kind: str, tiny: bool) -> dict:
    """Throughput (backlog drain) and commit → arrival latency with metrics and tracing off
    and on, in the order off, on, on, off so that drift over the run cancels out (at the
    tiny size CI runs: off, on)."""
    events = size("observability_events", tiny)
    tmp = Path(tempfile.mkdtemp(prefix="wh-bench-observability-"))
    runs = {"off": [], "on": []}
    try:
        for mode in ("off", "on") if tiny else ("off", "on", "on", "off"):
            extra = observability_env(tmp, on=mode == "on")
            print(f"observability: {kind}, {mode} …", file=sys.stderr, flush=True)
            drain = _system_run(
                kind,
                events=events,
                subs=3,
                ports=1,
                delay=0.0,
                webhooks=THROUGHPUT_WEBHOOKS,
                backlog=True,
                extra_env=extra,
            )
            latency = bench_latency(kind, tiny, extra_env=extra)
            directory = extra.get("PROMETHEUS_MULTIPROC_DIR")
            runs[mode].append(
                {
                    # Files the processes wrote their samples to: proof metrics were on.
                    "metrics_files": len(list(Path(directory).glob("*.db"))) if directory else 0,
                    "deliveries_per_s": drain["deliveries_per_s"],
                    "succeeded": drain["succeeded"],
                    "duplicates": drain["duplicates"],
                    "latency_p50_ms": latency["p50_ms"],
                    "latency_p99_ms": latency["p99_ms"],
                }
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def median(mode, key):
        return statistics.median(r[key] for r in runs[mode])

    summary = {
        key: {"off": median("off", key), "on": median("on", key)}
        for key in ("deliveries_per_s", "latency_p50_ms", "latency_p99_ms")
    }
    for figures in summary.values():
        figures["on_over_off"] = figures["on"] / figures["off"] if figures["off"] else None
    return {"runs": runs, "summary": summary, "events": events}


# 8. The customer portal's pages with 100,000 attempts -----------------------------------------


def bench_portal(kind: str, tiny: bool) -> dict:
    """Every portal page, found by crawling (bench/portal_bench.py), rendered in-process with
    Django's test client in this backend's database: median server time and queries."""
    attempts = size("portal_attempts", tiny)
    repeat = 1 if tiny else 7
    with backend(kind) as b:
        return host(
            b.env(),
            "--attempts",
            str(attempts),
            "--repeat",
            str(repeat),
            module="bench.portal_bench",
            timeout=3600,
        )


BENCHES = {
    "overhead": bench_overhead,
    "throughput": bench_throughput,
    "slow": bench_slow,
    "latency": bench_latency,
    "scaleout": bench_scaleout,
    "statements": bench_statements,
    "observability": bench_observability,
    "portal": bench_portal,
}


def run(name: str, *, tiny: bool, kinds: list[str], out: Path = RESULTS) -> dict:
    result = {
        "benchmark": name,
        "goal": GOALS[name],
        "size": "tiny" if tiny else "full",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "backends": {},
    }
    for kind in kinds:
        if kind == "postgres" and not postgres_available():
            result["backends"][kind] = {"skipped": "PostgreSQL or Redis not reachable"}
            continue
        print(f"{name}: {kind} …", file=sys.stderr, flush=True)
        result["backends"][kind] = BENCHES[name](kind, tiny)
    if name == "throughput":
        n = max(r["deliveries"] for r in result["backends"].values() if "deliveries" in r)
        result["plain_requests_loop"] = plain_requests_loop(n)
        ceiling = result["plain_requests_loop"]["requests_per_s"]
        for r in result["backends"].values():
            for run in (r, r.get("host_saving_meanwhile", {})):
                if "deliveries_per_s" in run:
                    run["ratio_to_plain_loop"] = run["deliveries_per_s"] / ceiling
    result["machine"]["load_average_after"] = os.getloadavg()
    out.mkdir(parents=True, exist_ok=True)
    path = out / (f"{name}-tiny.json" if tiny else f"{name}.json")
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}", file=sys.stderr)
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("benchmark", choices=[*BENCHES, "all"])
    parser.add_argument("--size", choices=["tiny", "full"], default="full")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the JSON goes")
    args = parser.parse_args(argv)
    names = list(BENCHES) if args.benchmark == "all" else [args.benchmark]
    for name in names:
        run(name, tiny=args.size == "tiny", kinds=args.backends.split(","), out=args.out)
    if args.size == "full" and args.out.resolve() == RESULTS.resolve():  # plots of bench/results
        from bench import plot

        plot.main()


if __name__ == "__main__":
    main()
