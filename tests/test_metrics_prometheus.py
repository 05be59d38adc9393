"""A real Prometheus server (Debian's ``prometheus``) scrapes the metrics URL of a live test
server, and what it stores equals what the database says."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

import webhooks
from tests.factories import DeliveryFactory, EventFactory
from tests.receiver import Answer, Receiver
from tests.test_metrics import scrape, value
from webhooks import stats
from webhooks.models import Delivery, DeliveryAttempt, Subscription

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
TOKEN = "prometheus-scrape-token-0123456789"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path(PROMETHEUS).exists(),
        reason="the prometheus server is not installed (Debian: apt-get install prometheus)",
    ),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Prometheus:
    """A Prometheus server on 127.0.0.1 scraping one target every second."""

    def __init__(self, tmp_path: Path, target: str, metrics_path: str, token: str) -> None:
        self.port = free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(
            json.dumps(  # JSON is YAML
                {
                    "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
                    "scrape_configs": [
                        {
                            "job_name": "webhooks",
                            "metrics_path": metrics_path,
                            "authorization": {"type": "Bearer", "credentials": token},
                            "static_configs": [{"targets": [target]}],
                        }
                    ],
                }
            )
        )
        self.log = open(tmp_path / "prometheus.log", "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=15)
        self.log.close()

    def query(self, promql: str) -> list[dict]:
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode(
            {"query": promql}
        )
        with urllib.request.urlopen(url, timeout=5) as answer:
            body = json.load(answer)
        assert body["status"] == "success", body
        return body["data"]["result"]

    def scalar(self, promql: str) -> float | None:
        result = self.query(promql)
        return float(result[0]["value"][1]) if result else None

    def by(self, label: str, promql: str) -> dict[str, float]:
        return {r["metric"].get(label, ""): float(r["value"][1]) for r in self.query(promql)}

    def wait_for_scrape_after(self, moment: float, timeout: float = 60) -> None:
        """Until a successful scrape of the target started after ``moment`` (epoch s)."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"prometheus exited ({self.process.returncode})")
            try:
                last = self.query('up{job="webhooks"}')
            except OSError:
                last = None  # not listening yet
            if last and last[0]["value"][1] == "1" and float(last[0]["value"][0]) > moment:
                # The sample of `up` is the scrape's own time: the next query reads it.
                stamp = self.scalar('timestamp(webhooks_backlog_up{job="webhooks"})')
                if stamp is not None and stamp > moment:
                    return
            time.sleep(0.3)
        raise AssertionError(f"no successful scrape after {moment} within {timeout} s: {last}")


@pytest.fixture
def prometheus(tmp_path, live_server, settings):
    settings.WEBHOOKS_METRICS_TOKEN = TOKEN
    started = []

    def start() -> Prometheus:
        target = live_server.url.removeprefix("http://")
        server = Prometheus(tmp_path, target, "/metrics/", TOKEN)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()  # always: a failed assertion must not leave it running


def test_a_real_prometheus_scrape_matches_the_database(
    prometheus, receiver, other_receiver, subscribe, settings, run_due
):
    settings.WEBHOOKS_RETRY_SCHEDULE = [5]
    ok = subscribe(receiver, ["article.created"])
    failing = subscribe(other_receiver, ["article.created"])
    other_receiver.default = Answer(status=500)
    gone_receiver = Receiver()
    gone_receiver.default = Answer(status=410)
    gone = subscribe(gone_receiver, ["article.deleted"])
    before = scrape()  # this process's counters so far (earlier tests count too)
    try:
        for i in range(3):
            webhooks.send_event("article.created", {"id": i})  # autocommit: sent at once
        run_due(timedelta(minutes=1))  # the failing webhook's one retry: given up
        webhooks.send_event("article.deleted", {"id": 1})  # 410: the webhook is disabled
    finally:
        gone_receiver.stop()
    # Due deliveries nobody sends (no worker runs here).
    past = timezone.now() - timedelta(minutes=10)
    for _ in range(4):
        DeliveryFactory(
            subscription=ok,
            next_attempt_at=past,
            event=EventFactory(fanned_out_at=past),
        )
    done = time.time()

    server = prometheus()
    server.wait_for_scrape_after(done)

    def counted(outcome_label: str, name: str) -> dict[str, float]:
        now = server.by(outcome_label, f"sum by ({outcome_label}) ({name})")
        then: dict[str, float] = {}
        for (sample, labels), figure in before.items():
            if sample == name:
                key = dict(labels).get(outcome_label, "")
                then[key] = then.get(key, 0.0) + figure
        return {k: v - then.get(k, 0.0) for k, v in now.items() if v - then.get(k, 0.0)}

    deliveries = counted("outcome", "webhooks_deliveries_total")
    finished = Delivery.objects.exclude(status=Delivery.Status.PENDING)
    assert deliveries == {
        "succeeded": finished.filter(status=Delivery.Status.SUCCEEDED).count(),
        "given_up": finished.filter(status=Delivery.Status.FAILED, subscription=failing).count(),
        "failed": finished.filter(status=Delivery.Status.FAILED, last_status_code=410).count(),
    }
    assert deliveries == {"succeeded": 3, "given_up": 3, "failed": 1}

    attempts = counted("outcome", "webhooks_attempts_total")
    logged = DeliveryAttempt.objects
    assert attempts == {
        "ok": logged.filter(succeeded=True).count(),
        "http_5xx": logged.filter(error_kind="http_5xx").count(),
        "http_4xx": logged.filter(error_kind="http_4xx").count(),
    }
    assert sum(attempts.values()) == logged.count() == 3 + 6 + 1  # ok, 500 twice each, 410

    disabled = counted("reason", "webhooks_disabled_total")
    assert disabled == {"gone": Subscription.objects.filter(is_active=False).count()}
    assert not Subscription.objects.get(pk=gone.pk).is_active

    backlog = stats.backlog()
    assert server.scalar("webhooks_deliveries_due") == backlog.due == 4
    assert server.scalar("webhooks_retries_waiting") == backlog.retries_waiting
    assert server.scalar("webhooks_webhooks_disabled") == backlog.webhooks_disabled == 1
    assert server.scalar("webhooks_events_waiting_fanout") == backlog.events_waiting == 0
    assert server.scalar("webhooks_oldest_due_age_seconds") == pytest.approx(
        backlog.oldest_due_age, abs=30
    )
    per_webhook = server.by("webhook", "webhooks_webhook_deliveries_due")
    assert per_webhook == {str(ok.pk): 4}
    histogram = server.scalar("sum(webhooks_attempt_duration_seconds_count)")
    assert histogram - value(before, "webhooks_attempt_duration_seconds_count") == logged.count()
    assert os.environ.get("PROMETHEUS_MULTIPROC_DIR") is None  # one process here
