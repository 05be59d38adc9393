"""Noisy neighbours: how long a healthy endpoint waits for its events next to hostile ones
(NUL and binary answers, bytes dripped in headers or body, no answer …), on one real
cluster (``manage.py qcluster``, 2 workers, plus the sweeper process of every benchmark).

Issue 19's set-ups, side by side (the default): ``WEBHOOKS_TIMEOUT`` 2 s, retry schedule
[2, 2] without jitter, one healthy endpoint and six hostile ones (a 500 with NUL bytes in
its body, a 500 with a binary body, a NUL in a header, headers dripped 1 byte/s, body
dripped 1 byte/s, never answers), 20 events at 2 per second:

* ``shared``: all seven on one host:port, told apart by their paths (``tests.hostile.
  SharedHost``, the healthy path answering from the same server);
* ``ports``: each on a port of its own (the healthy one is ``bench.receiver``, a process
  of its own);
* ``sustained``: ``--rate`` events/s for ``--seconds`` beside ``--hostile`` endpoints (the
  six behaviours in turn, each on its own port): the healthy delay, and for every hostile
  delivery whether each attempt started when it was due (``bench/schedule.py``), with the
  CPU the processes used (a 2-core machine cannot run the full size: say so, not guess).

    .venv/bin/python -m bench.noisy                      # shared + ports, both backends
    .venv/bin/python -m bench.noisy --setups sustained --rate 10 --hostile 50 --seconds 60
    .venv/bin/python -m bench.noisy --setups alone,ports --hostile-set all --burst-rate 4

Prints one JSON object (and writes it to ``--out`` if given); ``docs/benchmarks.md`` quotes
the figures. The hostile receivers are threads of this process (``tests/hostile.py``).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time
from collections import Counter
from pathlib import Path

from bench.harness import Backend, Processes, host, postgres_available, read_log, wait_until
from bench.schedule import CpuMeter, lateness, percentile, summary

#: Issue 13's eight hostile receivers (``--hostile-set all``, and the reliability test).
HOSTILE = (
    "nul_error",
    "binary",
    "nul_header",
    "drip_headers",
    "drip_body",
    "never_answers",
    "closes_mid_response",
    "stall_5s",
)
#: Issue 19's six.
ISSUE_HOSTILE = ("nul_error", "binary", "nul_header", "drip_headers", "drip_body", "never_answers")

NOISY_WEBHOOKS = {
    "RETRY_SCHEDULE": [0.5, 1, 2],  # 4 attempts, then failed
    "RETRY_JITTER": 0.1,
    "TIMEOUT": 2.0,
    "LEASE_SECONDS": 10,
    "FAN_OUT_GRACE": 2,
    "POLL_INTERVAL": 0.25,
    "BATCH_SIZE": 50,
    "MAX_CONCURRENCY": 16,
    "MAX_CONCURRENCY_PER_ENDPOINT": 4,
    "SWEEP_DURATION": 20,
}
# Issue 19's: retries every 2 s, without jitter so that each retry's due time is exact.
ISSUE_WEBHOOKS = {**NOISY_WEBHOOKS, "RETRY_SCHEDULE": [2, 2], "RETRY_JITTER": 0.0}
NOISY_Q_CLUSTER = {"timeout": 30, "retry": 60, "queue_limit": 4}

LAYOUTS = ("alone", "shared", "ports")


def run(
    kind: str,
    *,
    events: int,
    rate: float,
    hostile: bool = True,
    layout: str = "ports",
    behaviours: tuple[str, ...] = HOSTILE,
    hostile_count: int | None = None,
    webhooks: dict = NOISY_WEBHOOKS,
    deadline: float = 240,
    settle: float | None = None,
    per_webhook_report: bool = True,
    on_schedule: bool = False,
) -> dict:
    """One cluster, one healthy endpoint and ``hostile_count`` hostile ones (the
    ``behaviours`` in turn; all of them once by default), laid out as ``layout`` says.

    Waits up to ``deadline`` s for the healthy endpoint's events, then up to ``settle`` s
    (default: ``deadline``) for every delivery to end. ``on_schedule``: measure each hostile
    attempt's lateness (``bench/schedule.py``)."""
    from tests.hostile import HostileReceiver, SharedHost

    layout = layout if hostile else "alone"
    assert layout in LAYOUTS, layout
    count = 0 if layout == "alone" else hostile_count or len(behaviours)
    kinds = [behaviours[i % len(behaviours)] for i in range(count)]
    backend = Backend(kind, webhooks=webhooks, q_cluster=NOISY_Q_CLUSTER)
    backend.create()
    log, secrets = backend.tmp / "healthy.log", backend.tmp / "secrets.json"
    shared = SharedHost(log=log, drip_interval=1.0) if layout == "shared" else None
    receivers = [] if shared else [HostileReceiver(b, drip_interval=1.0) for b in kinds]
    cpu: dict = {}
    try:
        with Processes(backend.tmp, grace=10) as p:
            env = backend.env()
            if shared:
                healthy = shared.url_for("h", "healthy")
                hostile_urls = [shared.url_for(f"c{i}", b) for i, b in enumerate(kinds)]
            else:
                [port] = p.receiver(ports=1, log=log, secrets=secrets)
                healthy = f"http://127.0.0.1:{port}/healthy"
                hostile_urls = [f"{r.url}/{r.behaviour}" for r in receivers]
            host(env, "subscribe", healthy, *hostile_urls, "--secrets", str(secrets))
            cluster = p.qcluster(env)
            sweeper = p.sweeper(env, duration=deadline + (settle or deadline) + 120)
            meter, self_cpu = CpuMeter(), _own_cpu()
            created = host(env, "create", "--n", str(events), "--rate", str(rate))
            committed = {str(n) for n in created["committed"]}

            def arrived() -> set:
                return {r[5] for r in read_log(log) if 200 <= r[3] < 300}

            all_healthy = wait_until(lambda: committed <= arrived(), deadline, 0.25)
            settled = settle != 0 and wait_until(
                lambda: host(env, "status")["deliveries"].get("pending", 0) == 0,
                deadline if settle is None else settle,
                1,
            )
            ended = time.time()
            cpu = {
                "qcluster_s": meter.group_seconds(cluster.pid),
                "sweeper_s": meter.group_seconds(sweeper.pid),
                "hostile_receivers_s": round(_own_cpu() - self_cpu, 1),
                "host_creating_s": round(created["cpu_seconds_creating"], 1),
                "machine": meter.machine(),
            }
            cpu["qcluster_cores"] = round(cpu["qcluster_s"] / cpu["machine"]["wall_seconds"], 2)
            time.sleep(1)  # a late duplicate would land now
            states = host(env, "status")["deliveries"]
            report = host(env, "report") if per_webhook_report else {}
            attempts = host(env, "attempts") if on_schedule else {}
            rows = [r for r in read_log(log) if 200 <= r[3] < 300]
    finally:
        for r in receivers:
            r.stop()
        if shared:
            shared.stop()
        backend.drop()
    commit_times = {str(k): v for k, v in created["commit_times"].items()}
    delays = sorted(r[0] - commit_times[r[5]] for r in rows if r[5] in commit_times)
    # The healthy delays by when their events were committed, 10 s at a time: whether they
    # wait at the start (before the hostile webhooks are known to fail) or all along.
    first_commit = min(commit_times.values(), default=0.0)
    by_window: dict[int, list[float]] = {}
    for r in rows:
        if r[5] in commit_times:
            window = int((commit_times[r[5]] - first_commit) // 10) * 10
            by_window.setdefault(window, []).append(r[0] - commit_times[r[5]])
    per_id = Counter(r[2] for r in rows)

    def ms(q: float) -> int:
        return round(percentile(delays, q) * 1000) if delays else -1

    result = {
        "backend": backend.label,
        "layout": layout,
        "hostile": kinds,
        "events": events,
        "rate": rate,
        "seconds_creating": round(created["created"] - created["started"], 1),
        "all_healthy_delivered": all_healthy,
        "settled": settled,
        "delivery_states": states,
        "healthy_received": len({r[5] for r in rows} & committed),
        "healthy_duplicates": sum(c - 1 for c in per_id.values()),
        "healthy_delay_ms": {
            "p50": ms(0.5),
            "p95": ms(0.95),
            "p99": ms(0.99),
            "max": round(delays[-1] * 1000) if delays else -1,
            "mean": round(statistics.fmean(delays) * 1000) if delays else -1,
        },
        "healthy_delay_ms_by_commit_10s": {
            f"{window}s": {
                "p50": round(percentile(sorted(ds), 0.5) * 1000),
                "max": round(max(ds) * 1000),
            }
            for window, ds in sorted(by_window.items())
        },
        "cpu": cpu,
    }
    if per_webhook_report:
        result["webhooks"] = {url.rsplit("/", 1)[-1]: s for url, s in report.items()}
    if on_schedule:
        hostile_rows = [row for url, rs in attempts.items() if url != healthy for row in rs]
        late = lateness(hostile_rows, commit_times, list(webhooks["RETRY_SCHEDULE"]), now=ended)
        result["hostile_on_schedule"] = {
            "deliveries": len(hostile_rows),
            "first_attempts": summary(late["first"]),
            "retries": summary(late["retries"]),
            "all_attempts": summary(late["first"] + late["retries"]),
            "overdue_not_made": summary(late["overdue"]),
            # late_over_1s here: the deliveries with an attempt off schedule
            "worst_per_delivery": summary(late["worst_per_delivery"]),
        }
    return result


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def issue_setups(kind: str, setups: list[str], args) -> dict:
    """Issue 19's runs on one backend: ``alone``, ``shared``, ``ports`` (20 events at 2/s
    beside the six) and ``sustained``."""
    behaviours = HOSTILE if args.hostile_set == "all" else ISSUE_HOSTILE
    webhooks = NOISY_WEBHOOKS if args.hostile_set == "all" else ISSUE_WEBHOOKS
    # The caps a platform sized for this load would set (--per-endpoint, --in-flight).
    if args.per_endpoint:
        webhooks = {**webhooks, "MAX_CONCURRENCY_PER_ENDPOINT": args.per_endpoint}
    if args.in_flight:
        webhooks = {**webhooks, "MAX_IN_FLIGHT": args.in_flight}
    out = {}
    for setup in setups:
        if setup == "sustained":
            out[setup] = run(
                kind,
                events=max(1, round(args.rate * args.seconds)),
                rate=args.rate,
                layout="ports",
                behaviours=behaviours,
                hostile_count=args.hostile,
                webhooks=webhooks,
                deadline=args.deadline,
                settle=args.settle,
                per_webhook_report=False,
                on_schedule=True,
            )
        else:
            out[setup] = run(
                kind,
                events=args.events,
                rate=args.burst_rate,
                layout=setup,
                hostile=setup != "alone",
                behaviours=behaviours,
                webhooks=webhooks,
                deadline=args.deadline,
                settle=args.settle,
                on_schedule=True,
            )
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="postgres,sqlite", help="postgres, sqlite or both")
    parser.add_argument(
        "--backend", choices=["sqlite", "postgres"], help="one backend (same as --backends X)"
    )
    parser.add_argument(
        "--setups", default="shared,ports", help="any of alone, shared, ports, sustained"
    )
    parser.add_argument("--events", type=int, default=20, help="events of the shared/ports runs")
    parser.add_argument("--burst-rate", type=float, default=2.0, help="their events per second")
    parser.add_argument("--rate", type=float, default=10.0, help="sustained: events per second")
    parser.add_argument("--seconds", type=float, default=60.0, help="sustained: for how long")
    parser.add_argument("--hostile", type=int, default=50, help="sustained: hostile endpoints")
    parser.add_argument("--hostile-set", choices=["issue", "all"], default="issue")
    parser.add_argument("--deadline", type=float, default=240, help="wait for the healthy events")
    parser.add_argument("--settle", type=float, default=180, help="then for every delivery")
    parser.add_argument(
        "--per-endpoint", type=int, help="WEBHOOKS_MAX_CONCURRENCY_PER_ENDPOINT (default 4)"
    )
    parser.add_argument("--in-flight", type=int, help="WEBHOOKS_MAX_IN_FLIGHT (default 256)")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args(argv)
    kinds = [args.backend] if args.backend else args.backends.split(",")
    setups = args.setups.split(",")
    unknown = set(setups) - {*LAYOUTS, "sustained"}
    if unknown:
        parser.error(f"--setups: unknown {sorted(unknown)}; use alone, shared, ports, sustained")
    results: dict = {"setups": setups, "backends": {}}
    for kind in kinds:
        if kind == "postgres" and not postgres_available():
            results["backends"][kind] = {"skipped": "PostgreSQL or Redis not reachable"}
            continue
        results["backends"][kind] = issue_setups(kind, setups, args)
    text = json.dumps(results, indent=1)
    if args.out:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
