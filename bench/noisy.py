"""Noisy neighbours: how long a healthy endpoint waits for its events, alone and next to
hostile ones (NUL and binary answers, bytes dripped in headers or body, no answer, a
connection closed mid-answer, a 5 s stall), all on one real cluster.

    .venv/bin/python -m bench.noisy --events 40 --rate 4          # both runs, SQLite
    .venv/bin/python -m bench.noisy --backend postgres            # PostgreSQL + Redis

Prints one JSON object; ``docs/benchmarks.md`` quotes the figures. The hostile receivers
are threads of this process (``tests/hostile.py``); the healthy one is ``bench.receiver``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import Counter

from bench.harness import Backend, Processes, host, read_log, wait_until

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
NOISY_Q_CLUSTER = {"timeout": 30, "retry": 60, "queue_limit": 4}


def run(kind: str, *, events: int, rate: float, hostile: bool, deadline: float = 240) -> dict:
    from tests.hostile import HostileReceiver

    backend = Backend(kind, webhooks=NOISY_WEBHOOKS, q_cluster=NOISY_Q_CLUSTER)
    backend.create()
    receivers = [HostileReceiver(b, drip_interval=1.0) for b in HOSTILE] if hostile else []
    try:
        with Processes(backend.tmp, grace=10) as p:
            env = backend.env()
            log, secrets = backend.tmp / "healthy.log", backend.tmp / "secrets.json"
            [port] = p.receiver(ports=1, log=log, secrets=secrets)
            healthy = f"http://127.0.0.1:{port}/healthy"
            urls = [healthy] + [f"{r.url}/{r.behaviour}" for r in receivers]
            host(env, "subscribe", *urls, "--secrets", str(secrets))
            p.qcluster(env)
            p.sweeper(env, duration=deadline + 60)
            created = host(env, "create", "--n", str(events), "--rate", str(rate))
            committed = {str(n) for n in created["committed"]}

            def arrived() -> set:
                return {r[5] for r in read_log(log) if 200 <= r[3] < 300}

            all_healthy = wait_until(lambda: committed <= arrived(), deadline, 0.25)
            settled = wait_until(
                lambda: host(env, "status")["deliveries"].get("pending", 0) == 0, deadline, 1
            )
            time.sleep(1)  # a late duplicate would land now
            report = host(env, "report")
            rows = [r for r in read_log(log) if 200 <= r[3] < 300]
    finally:
        for r in receivers:
            r.stop()
        backend.drop()
    commit_times = {str(k): v for k, v in created["commit_times"].items()}
    delays = sorted(r[0] - commit_times[r[5]] for r in rows if r[5] in commit_times)
    per_id = Counter(r[2] for r in rows)

    def pct(q: float) -> float:
        return round(delays[min(len(delays) - 1, int(q * len(delays)))] * 1000) if delays else -1

    return {
        "backend": backend.label,
        "hostile": list(HOSTILE) if hostile else [],
        "events": events,
        "rate": rate,
        "all_healthy_delivered": all_healthy,
        "settled": settled,
        "healthy_received": len({r[5] for r in rows} & committed),
        "healthy_duplicates": sum(c - 1 for c in per_id.values()),
        "healthy_delay_ms": {
            "p50": pct(0.5),
            "p95": pct(0.95),
            "max": round(delays[-1] * 1000) if delays else -1,
            "mean": round(statistics.fmean(delays) * 1000) if delays else -1,
        },
        "webhooks": {url.rsplit("/", 1)[-1]: summary for url, summary in report.items()},
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--events", type=int, default=40)
    parser.add_argument("--rate", type=float, default=4.0)
    args = parser.parse_args(argv)
    results = [
        run(args.backend, events=args.events, rate=args.rate, hostile=hostile)
        for hostile in (False, True)
    ]
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
