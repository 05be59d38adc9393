"""Instructions per delivery (callgrind): the machine-independent figure for issue 23's CPU.

    python -m bench.instructions [--backends postgres] [--batches 2,10] [--calls]

A worker's CPU per delivery moves ±15–20 % from run to run on a shared machine; the
instructions the same work takes do not (two runs of the same code: within ~1.5 %). The
child process runs under ``valgrind --tool=callgrind``: it subscribes 3 webhooks to the
bench receiver, saves 10 events per batch with the on-commit enqueue switched off, and
calls ``dispatch.process_events`` per batch in this process (django-q2 in sync mode): fan-out,
sending, recording. It runs twice, with a few batches and with more; the difference per
delivery is what one delivery costs, start-up and set-up cancelled.

``--calls``: Python function calls per delivery too, by function (``sys.setprofile`` in a
plain run: exact counts, for finding where the instructions go).

(A worker hands its batches to its sender's threads instead, and what does not fit goes
back to the queue as tasks: not a path one process can run alone.)
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path

from bench.harness import ROOT, Processes, backend, host

SUBSCRIPTIONS = 3
EVENTS_PER_BATCH = 10
DELIVERIES_PER_BATCH = SUBSCRIPTIONS * EVENTS_PER_BATCH


# The child process (Django) --------------------------------------------------------------


def deliver(base_url: str, batches: int, count_calls: bool) -> dict:
    """Subscribe, save ``batches`` × 10 events, then fan out, send and record each batch."""
    from unittest import mock

    from django.db import transaction
    from django_q.conf import Conf

    from tests.testapp.models import Article
    from webhooks import dispatch
    from webhooks.models import Delivery, Event, Subscription
    from webhooks.signing import generate_secret

    Conf.SYNC = True
    Subscription.objects.all().delete()
    for i in range(SUBSCRIPTIONS):
        Subscription.objects.create(
            url=f"{base_url}/hook/{i}", all_events=True, secret=generate_secret()
        )
    with mock.patch("webhooks.outbox.enqueue"), transaction.atomic():
        for n in range(batches * EVENTS_PER_BATCH):
            Article.objects.create(title=str(n))
    ids = [str(pk) for pk in Event.objects.order_by("occurred_at").values_list("pk", flat=True)]
    calls: Counter[str] = Counter()
    counting = threading.Lock()  # the request threads count too: exact, not fast

    def count(frame, event, _arg):
        if event == "call":
            code = frame.f_code
            with counting:
                calls[f"{Path(code.co_filename).stem}.{code.co_qualname}"] += 1

    if count_calls:
        threading.setprofile(count)  # threads started from now on: the request pool's
        sys.setprofile(count)
    for start in range(0, len(ids), EVENTS_PER_BATCH):
        dispatch.process_events(ids[start : start + EVENTS_PER_BATCH])
    sys.setprofile(None)
    threading.setprofile(None)
    states = Counter(Delivery.objects.values_list("status", flat=True))
    return {"states": dict(states), "calls": dict(calls)}


def child(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--batches", type=int, required=True)
    parser.add_argument("--calls", action="store_true")
    args = parser.parse_args(argv)

    import django

    django.setup()
    sys.stdout.write(json.dumps(deliver(args.url, args.batches, args.calls)) + "\n")


# The benchmark's side (no Django) ----------------------------------------------------------


def _instructions(env: dict, url: str, batches: int, out: Path) -> int:
    """Instructions the child executed (callgrind's total), its deliveries checked."""
    done = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            sys.executable,
            "-m",
            "bench.instructions",
            "--child",
            "--url",
            url,
            "--batches",
            str(batches),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if done.returncode:
        raise RuntimeError(f"the child failed:\n{done.stdout}\n{done.stderr[-4000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    expected = batches * DELIVERIES_PER_BATCH
    if result["states"] != {"succeeded": expected}:
        raise RuntimeError(f"of {expected} deliveries: {result['states']}")
    totals = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.M)
    return int(totals.group(1))


def measure(kind: str, *, few: int, many: int, calls: bool) -> dict:
    webhooks = {"ALLOWED_NETWORKS": ["127.0.0.0/8"], "ALLOW_HTTP": True}
    result: dict = {
        "backend": kind,
        "batches": [few, many],
        "per_batch": DELIVERIES_PER_BATCH,
    }
    with tempfile.TemporaryDirectory() as logs, Processes(Path(logs)) as p:
        [port] = p.receiver(ports=1)
        url = f"http://127.0.0.1:{port}"
        counts = []
        for batches in (few, many):
            # A database of its own per run: the same rows, indexes and statistics.
            with backend(kind, webhooks=webhooks) as b:
                counts.append(_instructions(b.env(), url, batches, b.tmp / "callgrind.out"))
        deliveries = (many - few) * DELIVERIES_PER_BATCH
        result["instructions"] = counts
        result["instructions_per_delivery"] = round((counts[1] - counts[0]) / deliveries)
        if calls:
            per_run = []
            for batches in (few, many):
                with backend(kind, webhooks=webhooks) as b:
                    args = ("--child", "--url", url, "--batches", str(batches), "--calls")
                    per_run.append(host(b.env(), *args, module="bench.instructions")["calls"])
            difference = Counter(per_run[1])
            difference.subtract(per_run[0])
            result["calls_per_delivery"] = round(sum(difference.values()) / deliveries, 1)
            # A check of the method: one request per delivery.
            result["posts_per_delivery"] = difference["delivery.post"] / deliveries
            result["top_calls_per_delivery"] = {
                name: round(n / deliveries, 2) for name, n in difference.most_common(40)
            }
    return result


def main() -> None:
    if "--child" in sys.argv:
        sys.argv.remove("--child")
        return child(sys.argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="postgres")
    parser.add_argument("--batches", default="2,10", help="the two runs' batches of 30")
    parser.add_argument("--calls", action="store_true")
    args = parser.parse_args()
    few, many = (int(n) for n in args.batches.split(","))
    for kind in args.backends.split(","):
        result = measure(kind, few=few, many=many, calls=args.calls)
        print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
