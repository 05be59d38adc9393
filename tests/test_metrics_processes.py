"""Several processes: attempts made by real qcluster workers show up in the web server's
scrape (prometheus_client's multiprocess mode, one PROMETHEUS_MULTIPROC_DIR per host), and a
worker-only host serves the same figures with ``manage.py webhooks_metrics_server``."""

from __future__ import annotations

import re
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.test_serve import ROOT, example_env, free_port, interrupt, manage, start_serve, wait_for

pytestmark = pytest.mark.slow

TOKEN = "multiprocess-scrape-token-0123456789"
EVENTS = 3


def fetch(url: str, token: str | None = TOKEN) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError:
        return 0, ""  # not listening yet


def figure(text: str, name: str, **labels) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


def ok_attempts(url: str) -> float:
    status, text = fetch(url)
    if status != 200:
        return -1
    return figure(text, "webhooks_attempts_total", outcome="ok", event_type="webhook.test")


def test_workers_attempts_show_up_in_the_web_servers_scrape(tmp_path, receiver):
    env = example_env(tmp_path)
    directory = tmp_path / "prometheus-multiproc"
    directory.mkdir()  # empty at start, as the docs ask
    env["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    env["WEBHOOKS_METRICS_TOKEN"] = TOKEN
    manage(env, "migrate", "--noinput", capture_output=True)
    manage(
        env,
        "shell",
        "-c",
        "from webhooks.models import Subscription; "
        f"Subscription.objects.create(url='{receiver.url}', all_events=True)",
    )
    port = free_port()
    server = start_serve(env, port)
    exporter = None
    try:
        banner = server.stdout.readline()
        web_pid, workers_pid = (int(p) for p in re.findall(r"pid (\d+)", banner))
        url = f"http://127.0.0.1:{port}/metrics/"
        wait_for(lambda: fetch(url)[0] == 200, 60, "the web server's metrics URL")
        assert fetch(url, token=None)[0] == 401
        manage(
            env,
            "shell",
            "-c",
            "import webhooks\n"
            f"for i in range({EVENTS}): webhooks.send_event('webhook.test', {{'n': i}})",
        )
        wait_for(lambda: len(receiver.requests) >= EVENTS, 60, "the workers to deliver")
        # The web process sent nothing itself: what it reports was counted by the workers.
        wait_for(lambda: ok_attempts(url) == EVENTS, 30, f"{EVENTS} ok attempts in the scrape")
        writers = {int(m) for f in directory.iterdir() for m in re.findall(r"_(\d+)\.db$", f.name)}
        assert writers - {web_pid, workers_pid}, "no worker process wrote metrics"
        status, text = fetch(url)
        assert figure(text, "webhooks_deliveries_total", outcome="succeeded",
                      event_type="webhook.test") == EVENTS  # fmt: skip
        # The database figures are read once by the scraping process, never per process.
        assert figure(text, "webhooks_deliveries_due") == 0
        assert text.count("# TYPE webhooks_deliveries_due gauge") == 1
        assert figure(text, "webhooks_attempt_duration_seconds_count") == EVENTS

        # A host running only workers: the exporter command reads the same directory.
        exporter_port = free_port()
        exporter = subprocess.Popen(
            [sys.executable, "manage.py", "webhooks_metrics_server", "--port", str(exporter_port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        exporter_url = f"http://127.0.0.1:{exporter_port}/"
        wait_for(lambda: ok_attempts(exporter_url) == EVENTS, 60, "the exporter's figures")
        assert fetch(exporter_url, token=None)[0] == 401
        assert figure(fetch(exporter_url)[1], "webhooks_backlog_up") == 1
    finally:
        if exporter is not None:
            exporter.terminate()
            exporter.wait(timeout=20)
        interrupt(server)


def test_the_exporter_refuses_to_serve_beyond_this_host_without_a_token(tmp_path):
    env = example_env(tmp_path)
    env.pop("WEBHOOKS_METRICS_TOKEN", None)
    done = subprocess.run(
        [sys.executable, "manage.py", "webhooks_metrics_server", "--addr", "0.0.0.0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "needs WEBHOOKS_METRICS_TOKEN" in done.stderr
