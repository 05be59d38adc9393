"""A django-q2 worker gets ready when it is spawned, before its first task: connected to
the database and the broker, so the first event it handles is not the slow one."""

from __future__ import annotations

import logging

import pytest
from cryptography.fernet import Fernet
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext
from django_q.conf import Conf
from django_q.signals import post_spawn

from tests.factories import SubscriptionFactory
from tests.test_handoff import RecordingBroker
from webhooks import delivery, outbox

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def network_worker(monkeypatch):
    """A worker of a cluster behind a network broker (not sync mode)."""
    broker = RecordingBroker()
    monkeypatch.setattr(Conf, "SYNC", False)
    monkeypatch.setattr(outbox, "_get_broker", lambda: broker)
    return broker


def test_a_spawned_worker_connects_to_the_database_and_the_broker(network_worker):
    delivery._tls.clear()  # a new process has none
    connection.close()  # a new process has none (SQLite in memory keeps its own)
    with CaptureQueriesContext(connection) as captured:
        post_spawn.send(sender="django_q", proc_name="Worker-1")
    assert connection.connection is not None, "no database connection before the first task"
    # The fan-out's reads ran once, so the database session has them ready.
    reads = " ".join(q["sql"] for q in captured if q["sql"].startswith("SELECT"))
    assert "webhooks_event" in reads and "webhooks_subscription" in reads
    assert network_worker.pinged.is_set(), "the broker not reached before the first task"
    assert delivery._tls.get("context") is not None, "the trust store not read before"


def test_a_worker_spawned_while_the_database_is_down_still_starts(network_worker, monkeypatch):
    def refuse(*args, **kwargs):
        raise OperationalError("connection refused")

    connection.close()
    monkeypatch.setattr(connection, "ensure_connection", refuse)
    post_spawn.send(sender="django_q", proc_name="Worker-1")  # does not raise
    assert network_worker.pinged.is_set()  # what could be readied, was


def test_a_worker_started_with_keys_that_cannot_decrypt_the_secrets_says_so_and_starts(
    network_worker, settings, caplog
):
    settings.WEBHOOKS_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    SubscriptionFactory()
    settings.WEBHOOKS_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]  # the old key lost
    with caplog.at_level(logging.INFO, logger="webhooks"):
        post_spawn.send(sender="django_q", proc_name="Worker-1")  # does not raise
    [logged] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "1 of the 1 webhooks checked have secrets that no key" in logged.getMessage()
    assert "Put the key that encrypted them back" in logged.getMessage()
    assert network_worker.pinged.is_set()  # the rest of the warm-up went on


def test_a_worker_with_the_right_keys_logs_nothing_about_them(network_worker, caplog):
    SubscriptionFactory()
    with caplog.at_level(logging.INFO, logger="webhooks"):
        post_spawn.send(sender="django_q", proc_name="Worker-1")
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
