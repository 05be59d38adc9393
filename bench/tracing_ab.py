"""What tracing costs: the same work with the webhooks' spans off and on, side by side.

    python -m bench.tracing_ab [--saves 200] [--events 10] [--subs 20] [--rounds 20]

Both sides run inside a host span of the same OpenTelemetry SDK provider (a batch
processor, an exporter that drops): "on" hands that provider to webhooks as well. Rounds
alternate, so drift hits both alike. Figures are CPU time of this process (the receiver's
threads included) and wall time; prints one JSON line. SQLite unless ``DATABASE_URL``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from unittest import mock

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
os.environ.setdefault(
    "DATABASE_URL", f"sqlite:///{tempfile.mkdtemp(prefix='tracing-ab-')}/bench.sqlite3"
)
os.environ.setdefault("BENCH_WEBHOOKS", json.dumps({"ALLOWED_NETWORKS": ["127.0.0.0/8"]}))
django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import (  # noqa: E402
    BatchSpanProcessor,
    SpanExporter,
    SpanExportResult,
)

from tests.receiver import Receiver  # noqa: E402
from tests.testapp.models import Article  # noqa: E402
from webhooks import dispatch, outbox, tracing  # noqa: E402
from webhooks.models import Delivery, Event, Subscription  # noqa: E402


class Dropped(SpanExporter):
    def export(self, spans):
        return SpanExportResult.SUCCESS


def timed(work, n: int) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(n):
        work()
    return (time.process_time() - cpu) / n, (time.perf_counter() - wall) / n


def side_by_side(work, n: int, rounds: int, provider) -> dict:
    figures: dict = {"off": [], "on": []}
    for mode in ("off", "on"):  # warm-up
        tracing.set_tracer_provider(provider if mode == "on" else None)
        timed(work, max(1, n // 4))
    for _ in range(rounds):
        for mode in ("off", "on"):
            tracing.set_tracer_provider(provider if mode == "on" else None)
            figures[mode].append(timed(work, n))
    tracing.set_tracer_provider(None)
    result = {}
    for mode, runs in figures.items():
        result[f"{mode}_cpu_us"] = statistics.median(r[0] for r in runs) * 1e6
        result[f"{mode}_wall_us"] = statistics.median(r[1] for r in runs) * 1e6
    result["cpu_ratio"] = result["on_cpu_us"] / result["off_cpu_us"]
    result["wall_ratio"] = result["on_wall_us"] / result["off_wall_us"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--saves", type=int, default=200, help="saves per round")
    parser.add_argument("--events", type=int, default=10, help="events sent per round")
    parser.add_argument("--subs", type=int, default=20, help="webhooks each event goes to")
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    call_command("migrate", verbosity=0, run_syncdb=True)
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Dropped(), max_queue_size=100_000))
    host = provider.get_tracer("host")
    receiver = Receiver()
    Subscription.objects.all().delete()
    for _ in range(args.subs):
        Subscription.objects.create(url=receiver.url, all_events=True)

    def save():  # the host's side: a bound save in a request span (the outbox broker's path)
        with host.start_as_current_span("request"), transaction.atomic():
            Article.objects.create(title="x")

    def send():  # the workers' side: fan one event out and send its deliveries
        with host.start_as_current_span("request"):
            event = outbox.record_event("webhook.test", {"n": 1})
        dispatch.process_events([event.pk])

    try:
        # The save alone: what follows the commit is the workers' (measured below).
        with mock.patch("webhooks.outbox._after_commit"):
            saves = side_by_side(save, args.saves, args.rounds, provider)
        Event.objects.all().delete()  # the saves' events: not this side's work
        # One event per task, none helped with (no other work waits).
        with mock.patch("webhooks.dispatch._run_by_workers", return_value=False):
            deliveries = side_by_side(send, args.events, args.rounds, provider)
    finally:
        receiver.stop()
    sent = Delivery.objects.filter(status=Delivery.Status.SUCCEEDED).count()
    result = {
        "database": connection.vendor,
        "save": saves,
        "event_with_deliveries": {**deliveries, "webhooks_per_event": args.subs},
        "deliveries_succeeded": sent,
        "deliveries": Delivery.objects.count(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
