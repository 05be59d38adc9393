"""``manage.py webhooks_health`` and the health URLs: a verdict an operator can page on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.db import OperationalError, connection
from django.utils import timezone

from tests.factories import SubscriptionFactory
from tests.receiver import Answer
from tests.testapp.models import Article
from webhooks import health_urls, heartbeat, tasks
from webhooks.models import Heartbeat

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def fresh_process():
    """Each test is a new process as far as heartbeats and the URL's keys cache go."""
    heartbeat._last.clear()
    health_urls._keys.clear()
    yield
    heartbeat._last.clear()
    health_urls._keys.clear()


def run_health(*args) -> tuple[int, dict]:
    out = StringIO()
    try:
        call_command("webhooks_health", *args, stdout=out)
        code = 0
    except SystemExit as exit:
        code = exit.code
    return code, json.loads(out.getvalue())


@pytest.fixture
def running_cluster():
    """What a running qcluster leaves behind: the scheduled sweep ran in a worker."""
    tasks.sweep()


def test_a_running_cluster_with_nothing_late_is_healthy(running_cluster):
    code, report = run_health()
    assert (code, report["status"], report["problems"]) == (0, "ok", {})
    assert report["figures"]["workers_seen"] == 1
    assert report["figures"]["last_sweep_age_seconds"] < 60
    assert report["figures"]["due"] == 0
    assert report["figures"]["database_reachable"] and report["figures"]["keys_usable"]


def test_deliveries_due_for_too_long_make_it_unhealthy(
    running_cluster, subscribe, receiver, commit
):
    webhook = subscribe(receiver, ["article.created"])
    receiver.answer(Answer(500))
    with commit():
        Article.objects.create(title="late")
    # Its retry became due ten minutes ago and no worker took it.
    webhook.deliveries.update(next_attempt_at=timezone.now() - timedelta(minutes=10))

    code, report = run_health()
    assert (code, report["status"]) == (1, "unhealthy")
    assert list(report["problems"]) == ["due_age"]
    assert "1 deliveries are due, the oldest for 600 s" in report["problems"]["due_age"]
    assert report["figures"]["due"] == 1
    assert report["figures"]["oldest_due_age_seconds"] == pytest.approx(600, abs=30)

    assert run_health("--max-due-age", "3600")[0] == 0  # the operator's threshold


def test_a_webhook_switched_off_holds_its_deliveries_without_making_it_unhealthy(
    running_cluster, subscribe, receiver, commit
):
    """A customer's receiver answering 410 is the customer's business, not a page for the
    operator: what the webhook still owes is held, not late."""
    webhook = subscribe(receiver, ["article.created"])
    receiver.answer(Answer(500))
    with commit():
        Article.objects.create(title="owed")
    webhook.deliveries.update(next_attempt_at=timezone.now() - timedelta(hours=3))
    webhook.is_active, webhook.disabled_reason = False, "The receiver answered 410 Gone."
    webhook.save()

    code, report = run_health()
    assert (code, report["problems"]) == (0, {})
    assert (report["figures"]["due"], report["figures"]["held"]) == (0, 1)
    assert report["figures"]["webhooks_disabled"] == 1


def test_a_silent_sweeper_and_missing_workers_make_it_unhealthy(running_cluster):
    Heartbeat.objects.update(seen_at=timezone.now() - timedelta(minutes=10))

    code, report = run_health()
    assert code == 1 and set(report["problems"]) == {"sweeper", "workers"}
    assert "last ran 600 s ago" in report["problems"]["sweeper"]
    assert report["figures"]["workers_seen"] == 0
    assert run_health("--max-sweep-age", "900", "--worker-window", "900")[0] == 0
    assert run_health("--max-sweep-age", "900", "--worker-window", "900", "--min-workers", "2")[1][
        "problems"
    ] == {"workers": "1 worker process seen in the last 900 s (fewer than 2)."}


def test_keys_that_cannot_decrypt_the_stored_secrets_make_it_unhealthy(running_cluster, settings):
    settings.WEBHOOKS_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    SubscriptionFactory()
    settings.WEBHOOKS_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]  # the old key lost

    code, report = run_health()
    assert code == 1 and list(report["problems"]) == ["keys"]
    assert "no key of WEBHOOKS_ENCRYPTION_KEYS decrypts" in report["problems"]["keys"]
    assert "(webhooks.W004)" in report["problems"]["keys"]
    assert report["figures"]["keys_usable"] is False

    settings.WEBHOOKS_ENCRYPTION_KEYS = ["not-a-key"]
    code, report = run_health()
    assert code == 1 and "(webhooks.E010)" in report["problems"]["keys"]


def test_the_text_report_and_bad_thresholds(running_cluster):
    out = StringIO()
    call_command("webhooks_health", "--text", stdout=out)
    assert out.getvalue().startswith("webhooks: OK") and "workers_seen: 1" in out.getvalue()
    with pytest.raises(CommandError, match="--max-due-age must be 0 or more, not -5"):
        call_command("webhooks_health", "--max-due-age", "-5")


def test_a_worker_whose_heartbeat_cannot_be_written_still_works(
    monkeypatch, subscribe, receiver, commit
):
    def broken(*args, **kwargs):
        raise OperationalError("database is locked")

    monkeypatch.setattr(heartbeat, "_write", broken)
    subscribe(receiver, ["article.created"])
    with commit():
        Article.objects.create(title="sent anyway")
    tasks.sweep()
    assert len(receiver.requests) == 1 and not Heartbeat.objects.exists()


def test_worker_rows_of_processes_long_gone_are_pruned():
    Heartbeat.objects.create(key="worker:old-host:1", seen_at=timezone.now() - timedelta(days=2))
    Heartbeat.objects.create(key="worker:other:2", seen_at=timezone.now() - timedelta(hours=1))
    heartbeat.worker_beat()
    assert set(Heartbeat.objects.values_list("key", flat=True)) == {
        "worker:other:2",
        heartbeat.worker_key(),
    }


# -- the URLs -----------------------------------------------------------------------------


def test_the_node_url_answers_200_and_only_the_status_to_anonymous_callers(client):
    answer = client.get("/health/webhooks/")
    assert (answer.status_code, answer.json()) == (200, {"status": "ok"})


def test_the_platform_url_is_503_when_unhealthy_and_shows_the_figures_to_who_sees_all(
    client, admin_client, django_user_model, subscribe, receiver
):
    SubscriptionFactory(scope="acme", description="Acme's secret project")
    answer = client.get("/health/webhooks/platform/")  # no sweep ever ran
    assert (answer.status_code, answer.json()) == (503, {"status": "unhealthy"})

    staff = admin_client.get("/health/webhooks/platform/")
    assert staff.status_code == 503
    assert set(staff.json()["problems"]) == {"sweeper", "workers"}
    assert "acme" not in staff.content.decode().lower()  # aggregates only

    # A tenant's staff (they see their own organisation's webhooks) get the status only:
    # the figures are every tenant's.
    tenant_staff = django_user_model.objects.create_user("acme-staff", is_staff=True)
    client.force_login(tenant_staff)
    tenant = client.get("/health/webhooks/platform/")
    assert (tenant.status_code, tenant.json()) == (503, {"status": "unhealthy"})
    client.logout()

    tasks.sweep()
    assert client.get("/health/webhooks/platform/").status_code == 200


def test_the_node_url_is_503_with_keys_that_decrypt_nothing(client, settings):
    settings.WEBHOOKS_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    SubscriptionFactory()
    settings.WEBHOOKS_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    answer = client.get("/health/webhooks/")
    assert (answer.status_code, answer.json()) == (503, {"status": "unhealthy"})


def test_the_urls_answer_503_not_500_when_the_database_is_down(client, monkeypatch):
    def refuse(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(connection, "cursor", refuse)
    for url in ("/health/webhooks/", "/health/webhooks/platform/"):
        answer = client.get(url)
        assert (answer.status_code, answer.json()) == (503, {"status": "unknown"})


# -- exit codes, as a cron job or a container's health check sees them --------------------


def manage(*args, database_url: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_exit_codes_of_the_command(tmp_path):
    database = f"sqlite:///{tmp_path}/site.sqlite3"
    assert manage("migrate", "-v0", database_url=database).returncode == 0

    never_swept = manage("webhooks_health", database_url=database)
    assert never_swept.returncode == 1, never_swept.stderr
    assert json.loads(never_swept.stdout)["problems"].keys() == {"sweeper", "workers"}

    assert manage("webhooks_sweep", database_url=database).returncode == 0  # a real sweep
    swept = manage("webhooks_health", "--min-workers", "0", database_url=database)
    assert swept.returncode == 0, swept.stdout
    assert json.loads(swept.stdout)["status"] == "ok"

    down = manage("webhooks_health", database_url="postgres://postgres@127.0.0.1:1/none")
    assert down.returncode == 2 and "Traceback" not in down.stderr
    assert json.loads(down.stdout)["problems"] == {"database": "The database cannot be reached."}
    assert json.loads(down.stdout)["figures"] == {"database_reachable": False}


def test_a_valid_but_wrong_key_is_reported_everywhere_and_no_page_fails(
    settings, subscribe, receiver, commit, admin_client, caplog
):
    """The real host's story: the key was replaced by another valid one."""
    from webhooks import warmup

    settings.WEBHOOKS_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    webhook = subscribe(receiver, ["article.created"], basic_auth_username="u")
    with commit():
        Article.objects.create(title="sent with the right key")
    settings.WEBHOOKS_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]  # valid, wrong

    out = StringIO()
    call_command("check", stdout=out, stderr=out)
    assert "webhooks.W004" in out.getvalue()
    with caplog.at_level("INFO", logger="webhooks"):
        warmup.report_undecryptable_secrets()  # what a worker logs at its start
    assert "(webhooks.W004)" in caplog.text
    assert "keys" in run_health()[1]["problems"]

    [delivery] = webhook.deliveries.all()
    for url in (
        "/admin/webhooks/subscription/",
        f"/admin/webhooks/subscription/{webhook.pk}/change/",
        f"/admin/webhooks/delivery/{delivery.pk}/change/",
        "/admin/webhooks/delivery/",
    ):
        assert admin_client.get(url).status_code == 200, url
