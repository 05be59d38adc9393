"""Prometheus metrics: what the worker counts, what a scrape reads from the database, who
may scrape, and that metrics never break a delivery."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

import webhooks
from tests.factories import DeliveryFactory, EventFactory, SubscriptionFactory
from tests.receiver import Answer
from webhooks import stats
from webhooks.checks import check_metrics_settings
from webhooks.metrics import collector
from webhooks.metrics.exposition import render
from webhooks.models import Delivery, Subscription

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "metrics-token-for-tests-0123456789"


def scrape() -> dict:
    """{(sample name, sorted labels): value} of what the metrics URL would answer now."""
    body, _ = render()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def value(figures: dict, name: str, **labels) -> float:
    return figures.get((name, tuple(sorted(labels.items()))), 0.0)


def grew(before: dict, after: dict, name: str, **labels) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def test_attempts_deliveries_and_retries_are_counted_by_outcome_and_event_type(
    receiver, other_receiver, subscribe, commit, run_due, settings
):
    settings.WEBHOOKS_RETRY_SCHEDULE = [5]  # one retry, then given up
    subscribe(receiver, ["article.created"])
    subscribe(other_receiver, ["article.created"])
    other_receiver.default = Answer(status=503)
    before = scrape()
    with commit():
        webhooks.send_event("article.created", {"id": 1})
    middle = scrape()
    run_due()
    after = scrape()

    kind = {"event_type": "article.created"}
    assert grew(before, middle, "webhooks_attempts_total", outcome="ok", **kind) == 1
    assert grew(before, middle, "webhooks_attempts_total", outcome="http_5xx", **kind) == 1
    assert grew(before, middle, "webhooks_retries_scheduled_total") == 1
    assert grew(before, middle, "webhooks_deliveries_total", outcome="succeeded", **kind) == 1
    assert grew(before, middle, "webhooks_deliveries_total", outcome="given_up", **kind) == 0
    # The retry fails too: the delivery is given up, with no further retry.
    assert grew(middle, after, "webhooks_attempts_total", outcome="http_5xx", **kind) == 1
    assert grew(middle, after, "webhooks_retries_scheduled_total") == 0
    assert grew(middle, after, "webhooks_deliveries_total", outcome="given_up", **kind) == 1
    assert Delivery.objects.filter(status=Delivery.Status.FAILED).count() == 1
    # Three requests, timed; two first attempts, from the event's time.
    assert grew(before, after, "webhooks_attempt_duration_seconds_count") == 3
    assert grew(before, after, "webhooks_attempt_duration_seconds_sum") > 0
    assert grew(before, after, "webhooks_first_attempt_latency_seconds_count") == 2


def test_a_410_counts_a_failed_delivery_and_a_webhook_disabled_as_gone(receiver, subscribe, commit):
    subscribe(receiver, ["article.created"])
    receiver.default = Answer(status=410)
    before = scrape()
    with commit():
        webhooks.send_event("article.created", {"id": 1})
    after = scrape()
    assert not Subscription.objects.get().is_active
    kind = {"event_type": "article.created"}
    assert grew(before, after, "webhooks_deliveries_total", outcome="failed", **kind) == 1
    assert grew(before, after, "webhooks_disabled_total", reason="gone") == 1
    assert grew(before, after, "webhooks_disabled_total", reason="failing") == 0
    assert value(after, "webhooks_webhooks_disabled") == 1


def test_an_undeclared_event_type_is_labelled_other(receiver, subscribe, run_due):
    """Event types come from the code's registry: a stored type no longer declared (or any
    string in a row) cannot add label values."""
    sub = subscribe(receiver)
    DeliveryFactory(event=EventFactory(type="legacy.removedType"), subscription=sub)
    before = scrape()
    run_due()
    after = scrape()
    assert len(receiver.requests) == 1
    assert grew(before, after, "webhooks_attempts_total", outcome="ok", event_type="other") == 1
    names = {dict(labels).get("event_type") for _, labels in after}
    assert "legacy.removedType" not in names


def test_connection_errors_are_counted_by_kind(subscribe, commit):
    SubscriptionFactory(url="http://127.0.0.1:9/refused", all_events=True)  # discard port
    before = scrape()
    with commit():
        webhooks.send_event("article.created", {"id": 1})
    after = scrape()
    assert (
        grew(
            before,
            after,
            "webhooks_attempts_total",
            outcome="connection_refused",
            event_type="article.created",
        )
        == 1
    )


def test_an_attempt_that_sent_nothing_is_counted_but_not_timed(commit):
    """A target the SSRF guard refuses: no request left, so no duration skews the latency."""
    SubscriptionFactory(url="http://10.20.30.40/hook", all_events=True)
    before = scrape()
    with commit():
        webhooks.send_event("article.created", {"id": 1})
    after = scrape()
    kind = {"outcome": "blocked_target", "event_type": "article.created"}
    assert grew(before, after, "webhooks_attempts_total", **kind) == 1
    assert grew(before, after, "webhooks_attempt_duration_seconds_count") == 0


def test_backlog_gauges_are_the_database_figures(receiver, subscribe):
    now = timezone.now()
    active = subscribe(receiver)
    other = subscribe(receiver)
    subscribe(receiver, is_active=False)
    for minutes in (1, 5, 30):
        DeliveryFactory(subscription=active, next_attempt_at=now - timedelta(minutes=minutes))
    DeliveryFactory(subscription=other, next_attempt_at=now - timedelta(minutes=2))
    DeliveryFactory(subscription=active, next_attempt_at=now + timedelta(hours=1))
    EventFactory(occurred_at=now - timedelta(minutes=3))  # never fanned out
    figures = scrape()
    backlog = stats.backlog()
    assert value(figures, "webhooks_backlog_up") == 1
    assert value(figures, "webhooks_deliveries_due") == backlog.due == 4
    assert value(figures, "webhooks_retries_waiting") == backlog.retries_waiting == 1
    assert value(figures, "webhooks_webhooks_disabled") == backlog.webhooks_disabled == 1
    assert value(figures, "webhooks_events_waiting_fanout") == backlog.events_waiting
    assert value(figures, "webhooks_oldest_due_age_seconds") == pytest.approx(30 * 60, abs=60)
    assert backlog.oldest_due_age == pytest.approx(30 * 60, abs=60)
    assert value(figures, "webhooks_oldest_event_waiting_age_seconds") >= 3 * 60 - 5
    # Per webhook: labelled by id.
    assert value(figures, "webhooks_webhook_deliveries_due", webhook=str(active.pk)) == 3
    assert value(figures, "webhooks_webhook_deliveries_due", webhook=str(other.pk)) == 1
    assert value(
        figures, "webhooks_webhook_oldest_due_age_seconds", webhook=str(active.pk)
    ) == pytest.approx(30 * 60, abs=60)


def test_per_webhook_series_are_the_worst_few_and_never_show_urls(settings, subscribe):
    """Cardinality: at most TOP_WEBHOOKS by count plus TOP_WEBHOOKS by age, whatever the
    number of webhooks; and a URL's credentials or tenant never reach Prometheus."""
    settings.WEBHOOKS_METRICS_TOP_WEBHOOKS = 1
    now = timezone.now()
    subs = [
        SubscriptionFactory(url=f"https://tenant{i}.example.com/hook?token=s3cret{i}")
        for i in range(4)
    ]
    for _ in range(5):  # most due
        DeliveryFactory(subscription=subs[0], next_attempt_at=now - timedelta(seconds=5))
    DeliveryFactory(subscription=subs[1], next_attempt_at=now - timedelta(hours=2))  # oldest
    DeliveryFactory(subscription=subs[2], next_attempt_at=now - timedelta(minutes=1))
    DeliveryFactory(subscription=subs[3], next_attempt_at=now - timedelta(minutes=1))
    body = render()[0].decode()
    figures = scrape()
    labelled = {
        dict(labels)["webhook"]
        for name, labels in figures
        if name == "webhooks_webhook_deliveries_due"
    }
    assert labelled == {str(subs[0].pk), str(subs[1].pk)}
    assert value(figures, "webhooks_webhook_deliveries_due", webhook=str(subs[0].pk)) == 5
    assert "s3cret" not in body and "tenant" not in body and "example.com" not in body

    settings.WEBHOOKS_METRICS_TOP_WEBHOOKS = 0
    assert "webhooks_webhook_deliveries_due{" not in render()[0].decode()


def test_a_database_error_during_a_scrape_answers_backlog_up_0(monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("database gone")

    monkeypatch.setattr(collector.stats, "backlog", broken)
    figures = scrape()
    assert value(figures, "webhooks_backlog_up") == 0
    assert ("webhooks_deliveries_due", ()) not in figures
    assert "Could not read the webhooks backlog" in caplog.text


def test_the_sweeper_counts_its_polls():
    from webhooks import sweeper

    before = scrape()
    sweeper.sweep_once()
    sweeper.sweep_once()
    assert grew(before, scrape(), "webhooks_sweeps_total") == 2


def test_metrics_off_records_nothing(settings, receiver, subscribe, commit):
    settings.WEBHOOKS_METRICS = False
    subscribe(receiver)
    before = scrape()
    with commit():
        webhooks.send_event("article.created", {"id": 1})
    assert len(receiver.requests) == 1
    after = scrape()
    kind = {"event_type": "article.created"}
    assert grew(before, after, "webhooks_attempts_total", outcome="ok", **kind) == 0
    assert grew(before, after, "webhooks_deliveries_total", outcome="succeeded", **kind) == 0


def test_a_failing_metric_never_breaks_a_delivery(receiver, subscribe, commit, monkeypatch, caplog):
    from webhooks import metrics

    def broken(*args):
        raise RuntimeError("metrics backend exploded")

    monkeypatch.setattr(metrics.metrics(), "child", broken)
    subscribe(receiver)
    with commit():
        webhooks.send_event("article.created", {"id": 1})
    assert Delivery.objects.get().status == Delivery.Status.SUCCEEDED
    assert "Could not record webhook metrics" in caplog.text


# --- the URL ---------------------------------------------------------------------------


@pytest.fixture
def with_token(settings):
    settings.WEBHOOKS_METRICS_TOKEN = TOKEN


def test_the_url_needs_the_token(client, with_token):
    denied = client.get("/metrics/")
    assert denied.status_code == 401
    assert denied["WWW-Authenticate"].startswith("Bearer")
    wrong = client.get("/metrics/", headers={"Authorization": "Bearer not-the-token-at-all"})
    assert wrong.status_code == 401
    ok = client.get("/metrics/", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200
    assert ok["Content-Type"].startswith("text/plain")
    text = ok.content.decode()
    assert "webhooks_deliveries_due " in text and "# TYPE webhooks_attempts_total counter" in text
    assert TOKEN not in text


def test_the_url_is_denied_by_default_and_open_to_who_sees_every_tenant(client, settings):
    assert settings.WEBHOOKS_METRICS_TOKEN is None  # the example's default
    assert client.get("/metrics/").status_code == 401
    assert client.get("/metrics/", headers={"Authorization": "Bearer None"}).status_code == 401
    staff = get_user_model().objects.create_user("staff", password="x", is_staff=True)
    client.force_login(staff)  # of no organisation: sees no tenant
    assert client.get("/metrics/").status_code == 403
    root = get_user_model().objects.create_superuser("root", password="x")
    client.force_login(root)
    assert client.get("/metrics/").status_code == 200


def test_django_prometheus_exports_our_metrics_too(rf, receiver, subscribe, commit):
    """One process: prometheus_client's default registry (what django-prometheus's
    /metrics and ``start_http_server`` export) holds the counters and the backlog."""
    from django_prometheus.exports import ExportToDjangoView

    subscribe(receiver)
    with commit():
        webhooks.send_event("article.created", {"id": 1})
    text = ExportToDjangoView(rf.get("/metrics")).content.decode()
    assert 'webhooks_attempts_total{event_type="article.created",outcome="ok"}' in text
    assert "webhooks_deliveries_due 0.0" in text
    assert "webhooks_sweeps_total" in text


def test_without_prometheus_client_the_app_works_and_the_url_says_what_to_install(tmp_path):
    """A process where prometheus_client cannot be imported: checks pass, a delivery is
    made, and the metrics URL answers 501 with the install command."""
    script = f"""
import sys
sys.modules["prometheus_client"] = None  # as if the extra were not installed
import django
django.setup()
from django.conf import settings
settings.WEBHOOKS_METRICS_TOKEN = {TOKEN!r}
from django.core.management import call_command
from django.test import Client
from webhooks import dispatch, metrics
call_command("migrate", verbosity=0)
call_command("check", "--fail-level", "ERROR")
assert not metrics.available() and metrics.metrics() is None
metrics.outcomes_recorded([], {{}}, "automatic", {{}}, {{}})  # a no-op
metrics.swept()
bearer = {{"Authorization": "Bearer {TOKEN}"}}
answer = Client(SERVER_NAME="127.0.0.1").get("/metrics/", headers=bearer)
print(answer.status_code, answer.content.decode().strip())
"""
    env = {
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "webhooks.W020" in done.stderr  # token set, package missing
    status, message = done.stdout.strip().splitlines()[-1].split(" ", 1)
    assert status == "501"
    assert "pip install 'django-webhooks-outbox[metrics]'" in message


# --- settings ----------------------------------------------------------------------------


@pytest.mark.parametrize("top", [-1, 1001, "20", 2.5, True])
def test_a_bad_top_webhooks_setting_is_a_clear_error(settings, top):
    settings.WEBHOOKS_METRICS_TOP_WEBHOOKS = top
    assert [e.id for e in check_metrics_settings()] == ["webhooks.E020"]


@pytest.mark.parametrize("token", ["", "short", " " + TOKEN, 12345678901234567890])
def test_a_weak_or_malformed_token_is_a_clear_error(settings, token):
    settings.WEBHOOKS_METRICS_TOKEN = token
    assert [e.id for e in check_metrics_settings()] == ["webhooks.E021"]


def test_good_metrics_settings_pass_the_checks(settings):
    settings.WEBHOOKS_METRICS_TOKEN = TOKEN
    settings.WEBHOOKS_METRICS_TOP_WEBHOOKS = 0
    assert check_metrics_settings() == []
    call_command("check")
