"""Do retries keep their schedule? A receiver that answers 500 to everything, a retry
schedule of short steps without jitter, and each retry's start minus the time it was due
(the previous attempt's end plus the step, ``bench/schedule.py``); then how long
``qcluster`` takes to stop on SIGTERM.

    .venv/bin/python -m bench.retry_timing      # both backends, 60 events x 4 retries
    .venv/bin/python -m bench.retry_timing --backends sqlite --events 10 --schedule 1,1

Only what a deployment runs is started: ``manage.py qcluster`` (2 workers) and its
scheduled sweep (created by ``migrate``), no sweeper process of the benchmarks' own
(``--sweeper-process`` adds one, to compare). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import time
from pathlib import Path

from bench.harness import Backend, Processes, host, postgres_available, wait_until
from bench.schedule import CpuMeter, lateness, summary

RETRY_Q_CLUSTER = {"timeout": 90, "retry": 120, "queue_limit": 4}


def run(
    kind: str,
    *,
    events: int,
    rate: float,
    schedule: list[float],
    deadline: float,
    sweeper_process: bool = False,
) -> dict:
    webhooks = {"RETRY_SCHEDULE": schedule, "RETRY_JITTER": 0.0, "TIMEOUT": 2.0}
    backend = Backend(kind, webhooks=webhooks, q_cluster=RETRY_Q_CLUSTER)
    backend.create()
    try:
        with Processes(backend.tmp, grace=10) as p:
            env = backend.env()
            # Every request fails (500 at once), every attempt: max-faults above the tries.
            [port] = p.receiver(ports=1, fail=1.0, max_faults=len(schedule) + 5)
            host(env, "subscribe", f"http://127.0.0.1:{port}/failing")
            cluster = p.qcluster(env)
            if sweeper_process:
                p.sweeper(env, duration=deadline + 60)
            meter = CpuMeter()
            created = host(env, "create", "--n", str(events), "--rate", str(rate))
            settled = wait_until(
                lambda: host(env, "status")["deliveries"].get("pending", 0) == 0, deadline, 1
            )
            ended = time.time()
            cpu = {"qcluster_s": meter.group_seconds(cluster.pid), "machine": meter.machine()}
            states = host(env, "status")["deliveries"]
            attempts = host(env, "attempts")
            stop = stop_seconds(cluster)
    finally:
        backend.drop()
    rows = [row for per_webhook in attempts.values() for row in per_webhook]
    commit_times = {str(k): v for k, v in created["commit_times"].items()}
    late = lateness(rows, commit_times, schedule, now=ended)
    return {
        "backend": backend.label,
        "events": events,
        "rate": rate,
        "schedule": schedule,
        "sweeper_process": sweeper_process,
        "settled": settled,
        "delivery_states": states,
        "retries_expected": events * len(schedule),
        "retry_lateness": summary(late["retries"]),
        "overdue_retries_not_made": summary(late["overdue"]),
        "first_attempt_lateness": summary(late["first"]),
        "qcluster_stop_seconds": stop,
        "cpu": cpu,
    }


def stop_seconds(proc: subprocess.Popen, *, limit: float = 60) -> float | None:
    """Seconds from SIGTERM to the cluster's exit (None: still running after ``limit``;
    the harness then kills it)."""
    t0 = time.monotonic()
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        return None
    return round(time.monotonic() - t0, 2)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--events", type=int, default=60, help="each retried len(schedule) times")
    parser.add_argument("--rate", type=float, default=5.0, help="events per second")
    parser.add_argument("--schedule", default="1,1,1,1", help="retry steps in seconds")
    parser.add_argument("--deadline", type=float, default=300, help="wait for every delivery")
    parser.add_argument("--sweeper-process", action="store_true")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args(argv)
    schedule = [float(s) for s in args.schedule.split(",")]
    results: dict = {"backends": {}}
    for kind in args.backends.split(","):
        if kind == "postgres" and not postgres_available():
            results["backends"][kind] = {"skipped": "PostgreSQL or Redis not reachable"}
            continue
        results["backends"][kind] = run(
            kind,
            events=args.events,
            rate=args.rate,
            schedule=schedule,
            deadline=args.deadline,
            sweeper_process=args.sweeper_process,
        )
    text = json.dumps(results, indent=1)
    if args.out:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
