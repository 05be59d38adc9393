"""Rate limits across hosts: does a webhook's limit hold with 3 worker processes on 2 hosts?

    .venv/bin/python -m bench.ratelimit [--seconds 60] [--limit 20] [--rate 30] [--out F]

PostgreSQL + Redis (``BENCH_POSTGRES_URL``, ``BENCH_REDIS_URL``, as every benchmark). Two
``qcluster`` hosts, each in a network namespace of its own as in ``bench.scaleout`` (2
worker processes on the first, 1 on the second), and a sweeper on the second. Two webhooks
receive every event: one limited to ``--limit`` messages per second, one without a limit
beside it. The host saves ``--rate`` events per second (above the limit) for ``--seconds``.

Reported: the limited webhook's rate measured at the receiver over the load window, and
over any one second, against its limit (goal: within +5 %); how often deliveries were
postponed (given back to wait their turn) and how many waited; attempts that failed (goal:
0); lost and duplicated deliveries; and the delay (commit → arrival) of the unlimited
webhook beside it. Without root or ``ip netns`` the clusters run side by side on this one
host, and the result says so.

    .venv/bin/python -m bench.ratelimit limit URL N    # (used by the run: sets a limit)
    .venv/bin/python -m bench.ratelimit report URL     # (used by the run: the database's view)
"""

from __future__ import annotations

import argparse
import bisect
import json
import re
import secrets
import shutil
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

from bench.harness import Backend, Processes, host, postgres_available, read_log, wait_until
from bench.scaleout import (
    TAG_PREFIX,
    Network,
    State,
    _via,
    clean_leftovers,
    proc_stat,
    remove_tag,
    why_not_runnable,
)

#: Worker processes per host: 3 on 2 hosts.
WORKERS = (2, 1)
POSTPONED = re.compile(r"Rate limit: (\d+) deliveries postponed")


def run(*, seconds: float, limit: int, rate: float, timeout: float | None = None) -> dict:
    if not postgres_available():
        return {"skipped": "needs PostgreSQL and Redis (BENCH_POSTGRES_URL, BENCH_REDIS_URL)"}
    events = max(1, round(seconds * rate))
    # The backlog drains at the limit once the load ends.
    timeout = timeout or seconds + events / limit + 60
    no_namespaces = why_not_runnable()
    backend = Backend("postgres", workers=WORKERS[0])
    backend.extra_env["BENCH_LOG_LEVELS"] = json.dumps({"webhooks.ratelimit": "INFO"})
    tag = TAG_PREFIX + secrets.token_hex(3)
    state = State(tag)
    state.data["databases"].append(backend.name)
    state.data["dirs"].append(str(backend.tmp))
    state.data["redis_url"] = backend.redis_url
    cleaned = [] if no_namespaces else clean_leftovers(backend.admin_url)
    state.save()
    logs, net = [], None
    try:
        with Processes(backend.tmp, grace=10) as processes:
            if no_namespaces:
                net, address = None, "127.0.0.1"
                backend.webhooks = {"ALLOWED_NETWORKS": ["127.0.0.0/8"]}
                backend.create()
                envs = [backend.env(), backend.env()]

                def wrap(i, cmd):
                    return cmd
            else:
                net = Network(len(WORKERS), processes, state)
                net.up()
                address = net.gateway
                backend.webhooks = {"ALLOWED_NETWORKS": [str(net.subnet)]}
                backend.create()
                pg, rd = urlsplit(backend.database_url), urlsplit(backend.redis_url)
                pg_port = net.forward("postgresql", pg.hostname, pg.port or 5432)
                rd_port = net.forward("redis", rd.hostname, rd.port or 6379)
                envs = [
                    backend.env(
                        DATABASE_URL=_via(backend.database_url, net.gateway, pg_port),
                        REDIS_URL=_via(backend.redis_url, net.gateway, rd_port),
                    )
                    for _ in WORKERS
                ]

                def wrap(i, cmd):
                    return net.in_namespace(i + 1, cmd)

            log = backend.tmp / "received.log"
            ports = processes.receiver(ports=2, log=log, host=address, log_peer=True)
            _remember(state, processes.procs[-1])
            limited_url = f"http://{address}:{ports[0]}/hook/limited"
            free_url = f"http://{address}:{ports[1]}/hook/free"
            host(backend.env(), "subscribe", limited_url, free_url)
            host(backend.env(), "limit", limited_url, str(limit), module="bench.ratelimit")
            for i, workers in enumerate(WORKERS):
                env = {**envs[i], "Q_WORKERS": str(workers)}
                name = f"qcluster-{i + 1}"
                cmd = wrap(i, [sys.executable, "manage.py", "qcluster"])
                _remember(state, processes.start(name, cmd, env))
                logs.append(backend.tmp / f"{name}.log")
            # The sweeper claims the postponed deliveries when their turn comes (the
            # per-process wake-up timer will do it without polling).
            sweep = [sys.executable, "manage.py", "webhooks_sweep", "--duration", str(timeout)]
            _remember(state, processes.start("sweeper", wrap(1, sweep), envs[-1]))
            logs.append(backend.tmp / "sweeper.log")
            time.sleep(4)  # Django set up, workers forked and polling
            for proc in processes.procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"{proc.name} exited early (see {backend.tmp})")
            made = host(
                backend.env(),
                "create",
                "--n",
                str(events),
                "--rate",
                str(rate),
                "--prefix",
                "rl-",
                timeout=seconds * 3 + 120,
            )
            complete = wait_until(
                lambda: len({r[2] for r in read_log(log) if 200 <= r[3] < 300}) >= 2 * events,
                timeout,
                0.5,
            )
            time.sleep(1)  # a late duplicate would land now
            database = host(backend.env(), "report", limited_url, module="bench.ratelimit")
            rows = read_log(log, with_peer=True)
            postponements = sum(
                int(m.group(1))
                for path in logs
                if path.exists()
                for m in POSTPONED.finditer(path.read_text(errors="replace"))
            )
            peers = {}
            if net is not None:
                peers = {net.address(i + 1): f"host_{i + 1}" for i in range(len(WORKERS))}
    except BaseException:
        kept = Path(backend.tmp.parent) / f"whb-ratelimit-{tag}"
        shutil.copytree(backend.tmp, kept, dirs_exist_ok=True)
        print(f"ratelimit: failed; process logs kept in {kept}", file=sys.stderr)
        raise
    finally:
        if net is not None:
            remove_tag(tag)
        backend.drop()
        state.remove()
    return {
        "hosts": 1 if no_namespaces else len(WORKERS),
        "hosts_note": (
            f"one host only: {no_namespaces}"
            if no_namespaces
            else "2 network namespaces (as bench.scaleout), PostgreSQL and Redis via socat"
        ),
        "worker_processes": dict(
            zip([f"host_{i + 1}" for i in range(len(WORKERS))], WORKERS, strict=True)
        ),
        "seconds": seconds,
        "offered_events_per_s": rate,
        "limit_per_s": limit,
        "events": events,
        "complete": complete,
        "leftovers_removed_first": cleaned,
        **figures(rows, made, limit, peers),
        "postponements": postponements,
        "database": database,
    }


def _remember(state: State, proc) -> None:
    state.add("pids", [proc.pid, proc_stat(proc.pid)["start"]])


def figures(rows, made: dict, limit: int, peers: dict) -> dict:
    """What the receiver saw: the limited webhook's pace, the unlimited one's delay."""
    ok = [r for r in rows if 200 <= r[3] < 300 and r[5].startswith("rl-")]
    limited = sorted(r[0] for r in ok if r[1].endswith("/limited"))
    free = [r for r in ok if r[1].endswith("/free")]
    per_id = Counter(r[2] for r in ok)
    commits = {int(n): t for n, t in made["commit_times"].items()}
    delays = sorted(
        r[0] - commits[int(r[5].removeprefix("rl-"))]
        for r in free
        if r[5].removeprefix("rl-").isdigit() and int(r[5].removeprefix("rl-")) in commits
    )
    out = {
        "received_limited": len(limited),
        "received_unlimited": len(free),
        "lost": 2 * len(made["committed"]) - len(per_id),
        "duplicates": sum(c - 1 for c in per_id.values()),
        "non_2xx_answers": len([r for r in rows if not 200 <= r[3] < 300]),
        "signature_failures": sum(not r[4] for r in rows),
        "per_host": dict(Counter(peers.get(r[6], r[6]) for r in ok)),
    }
    if len(limited) > limit:
        first, load_end = limited[0], made["created"]
        # Over the load: after the first second (its burst), to the end of the saves.
        window = [t for t in limited if first + 1 <= t <= load_end]
        span = load_end - (first + 1)
        out["limited_rate_during_load_per_s"] = round(len(window) / span, 3) if span > 0 else None
        # Over everything it received: its first second's burst left out.
        whole = limited[-1] - first
        out["limited_rate_overall_per_s"] = round((len(limited) - limit) / whole, 3)
        in_1s = [bisect.bisect_left(limited, t + 1.0) - i for i, t in enumerate(limited)]
        # The first second after a quiet spell may hold up to twice the limit (its burst).
        out["limited_most_in_any_1s"] = max(in_1s)
        steady = [n for n, t in zip(in_1s, limited, strict=True) if t >= first + 1]
        out["limited_most_in_any_1s_after_the_first"] = max(steady, default=0)
        # 1 s windows (one starting at each arrival) holding more than the limit.
        over = sum(n > limit for n in steady)
        out["limited_1s_windows_over_the_limit"] = f"{over} of {len(steady)}"
        # The busiest window of 5 and of 10 seconds after the first, per second.
        for width in (5, 10):
            most = max(
                (
                    bisect.bisect_left(limited, t + width) - i
                    for i, t in enumerate(limited)
                    if first + 1 <= t <= limited[-1] - width
                ),
                default=0,
            )
            out[f"limited_busiest_{width}s_per_s"] = round(most / width, 2)
        measured = out["limited_rate_during_load_per_s"] or out["limited_rate_overall_per_s"]
        out["limited_rate_vs_limit"] = f"{(measured / limit - 1) * 100:+.1f} %"
        out["within_5_percent"] = measured <= limit * 1.05
    if delays:
        out["unlimited_delay_s"] = {
            "p50": round(statistics.median(delays), 3),
            "p99": round(delays[min(len(delays) - 1, int(len(delays) * 0.99))], 3),
            "max": round(delays[-1], 3),
        }
    return out


def set_limit(url: str, rate: int) -> dict:
    from webhooks.models import Subscription

    return {"limited": Subscription.objects.filter(url=url).update(rate_limit=rate)}


def database_report(url: str) -> dict:
    """The database's view of the limited webhook: its deliveries and their attempts."""
    from django.db.models import Count

    from webhooks.models import Delivery, DeliveryAttempt

    deliveries = Delivery.objects.filter(subscription__url=url)
    attempts = DeliveryAttempt.objects.filter(delivery__subscription__url=url)
    per_delivery = Counter(deliveries.annotate(n=Count("attempts")).values_list("n", flat=True))
    return {
        "deliveries_by_status": dict(Counter(deliveries.values_list("status", flat=True))),
        "attempts": attempts.count(),
        "failed_attempts": attempts.filter(succeeded=False).count(),
        "attempts_per_delivery": {str(k): v for k, v in sorted(per_delivery.items())},
    }


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("cmd", nargs="?", default="run", choices=["run", "limit", "report"])
    p.add_argument("args", nargs="*")
    p.add_argument("--seconds", type=float, default=60.0, help="how long the load lasts")
    p.add_argument("--limit", type=int, default=20, help="the webhook's messages per second")
    p.add_argument("--rate", type=float, default=30.0, help="events saved per second")
    p.add_argument("--out", help="also write the result (JSON) to this file")
    args = p.parse_args(argv)
    if args.cmd in ("limit", "report"):
        import os

        import django

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
        django.setup()
        if args.cmd == "limit":
            result = set_limit(args.args[0], int(args.args[1]))
        else:
            result = database_report(args.args[0])
        print(json.dumps(result, default=str))
        return
    result = run(seconds=args.seconds, limit=args.limit, rate=args.rate)
    text = json.dumps(result, indent=2, default=str)
    if args.out:
        Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
