"""The alert rules and the Grafana dashboard of docs/operators.md: valid for Prometheus's own
tools, each alert tested both ways, and reading only metrics and labels this app exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

import webhooks
from tests.factories import DeliveryFactory
from tests.receiver import Answer
from tests.test_metrics import scrape

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "docs" / "prometheus-alerts.yml"
RULES_TEST = ROOT / "tests" / "prometheus" / "alerts-test.yml"
DASHBOARD = ROOT / "docs" / "grafana-dashboard.json"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"

needs_promtool = pytest.mark.skipif(
    not Path(PROMTOOL).exists(),
    reason="promtool not installed (Debian: apt-get install prometheus)",
)

METRIC = re.compile(r"\b(webhooks_[a-z0-9_]+)\b(\{[^}]*\})?")
MATCHER = re.compile(r"(\w+)\s*(?:=~|!~|!=|=)")
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")


def alert_rules() -> list[dict]:
    return [
        rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]
    ]


def dashboard_queries() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in board["panels"] for target in panel["targets"]]


def promtool(*args, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


@needs_promtool
def test_the_alert_rules_pass_promtool_check():
    done = promtool("check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in done.stdout


@needs_promtool
def test_each_alert_fires_on_bad_series_and_stays_silent_on_good_ones():
    done = promtool("test", "rules", RULES_TEST.name, cwd=RULES_TEST.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_every_alert_has_a_firing_and_a_silent_case():
    cases = yaml.safe_load(RULES_TEST.read_text())["tests"]
    firing, silent = set(), set()
    for case in cases:
        for check in case["alert_rule_test"]:
            (firing if check["exp_alerts"] else silent).add(check["alertname"])
    names = {rule["alert"] for rule in alert_rules()}
    assert names - firing == set(), "alerts never shown to fire"
    assert names - silent == set(), "alerts never shown to stay silent"


@needs_promtool
def test_the_dashboard_is_valid_json_whose_queries_parse(tmp_path):
    board = json.loads(DASHBOARD.read_text())
    assert board["uid"] and board["panels"]
    titles = " ".join(p["title"].lower() for p in board["panels"])
    for subject in ("outcome", "failure rate", "p95", "backlog", "oldest", "disabled", "top"):
        assert subject in titles, subject
    # promtool parses PromQL in rules: each query becomes a recording rule ($__rate_interval
    # is Grafana's, filled in when the panel runs).
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{i}", "expr": q.replace("$__rate_interval", "5m")}
                    for i, q in enumerate(dashboard_queries())
                ],
            }
        ]
    }
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump(rules))
    done = promtool("check", "rules", str(path))
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.django_db
def test_rules_and_dashboard_read_only_metrics_and_labels_this_app_exports(
    receiver, other_receiver, subscribe, commit
):
    # Give every labelled series a sample: a success, a 410 (disabled), a due delivery.
    working = subscribe(receiver)
    subscribe(other_receiver)
    other_receiver.default = Answer(status=410)
    with commit():
        webhooks.send_event("article.created", {"id": 1})
    DeliveryFactory(subscription=working)  # due (a disabled webhook's would be held)
    exported: dict[str, set[str]] = {}
    for name, labels in scrape():
        exported.setdefault(name, set()).update(label for label, _ in labels)
    for name in ("webhooks_disabled_total", "webhooks_webhook_deliveries_due"):
        assert name in exported, name  # the scrape above covers the labelled series

    expressions = [rule["expr"] for rule in alert_rules()] + dashboard_queries()
    used = set()
    for expr in expressions:
        labels_here = set()
        for name, matchers in METRIC.findall(expr):
            assert name in exported, f"{name} (in {expr!r}) is not exported"
            used.add(name)
            labels_here |= exported[name]
            for label in MATCHER.findall(matchers or ""):
                assert label in exported[name], f"{name} has no label {label!r} ({expr!r})"
        for grouping in GROUPING.findall(expr):
            for label in filter(None, (g.strip() for g in grouping.split(","))):
                assert label in labels_here, f"no metric of {expr!r} has the label {label!r}"
    # Every figure the issue asks for is on the dashboard or in an alert.
    for name in (
        "webhooks_deliveries_total",
        "webhooks_attempts_total",
        "webhooks_attempt_duration_seconds_bucket",
        "webhooks_first_attempt_latency_seconds_bucket",
        "webhooks_deliveries_due",
        "webhooks_oldest_due_age_seconds",
        "webhooks_events_waiting_fanout",
        "webhooks_webhooks_disabled",
        "webhooks_disabled_total",
        "webhooks_sweeps_total",
        "webhooks_webhook_deliveries_due",
    ):
        assert name in used, name
