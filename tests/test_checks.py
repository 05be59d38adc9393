"""Each system check id fires on its wrong setting."""

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command

from tests.factories import SubscriptionFactory
from webhooks import checks
from webhooks.checks import check_settings
from webhooks.models import Subscription

ROOT = Path(__file__).resolve().parents[1]


def ids(**kwargs):
    return {message.id for message in check_settings()}


@pytest.mark.parametrize(
    "setting,value,check_id",
    [
        ("WEBHOOKS_TIMEOUT", 0, "webhooks.E001"),
        ("WEBHOOKS_TIMEOUT", "10", "webhooks.E001"),
        ("WEBHOOKS_RETRY_SCHEDULE", [5, -1], "webhooks.E002"),
        ("WEBHOOKS_RETRY_SCHEDULE", "5,10", "webhooks.E002"),
        ("WEBHOOKS_ALLOWED_NETWORKS", ["not-a-network"], "webhooks.E003"),
        ("WEBHOOKS_LEASE_SECONDS", 1, "webhooks.E004"),
        ("WEBHOOKS_RESPONSE_BODY_LIMIT", -5, "webhooks.E005"),
        ("WEBHOOKS_SCOPE_RESOLVER", "nowhere.resolver", "webhooks.E006"),
        ("WEBHOOKS_MAX_CONCURRENCY_PER_ENDPOINT", 0, "webhooks.E007"),
        ("WEBHOOKS_MAX_IN_FLIGHT", 0, "webhooks.E007"),
        ("WEBHOOKS_BATCH_SIZE", 2.5, "webhooks.E007"),
        ("WEBHOOKS_BROKER_BACKOFF", -1, "webhooks.E008"),
        ("WEBHOOKS_SCOPE_CHOICES", "nowhere.choices", "webhooks.E009"),
        ("WEBHOOKS_API_PERMISSION_CLASSES", ["nowhere.Permission"], "webhooks.E009"),
        ("WEBHOOKS_KEEP_SUCCEEDED_DAYS", 0, "webhooks.E012"),
        ("WEBHOOKS_KEEP_FAILED_DAYS", "90", "webhooks.E012"),
        ("WEBHOOKS_KEEP_EVENTS_DAYS", -1, "webhooks.E012"),
        ("WEBHOOKS_PURGE_BATCH_SIZE", 0, "webhooks.E013"),
        ("WEBHOOKS_PURGE_TIME_LIMIT", "60", "webhooks.E014"),
        ("WEBHOOKS_MAX_WEBHOOKS_PER_SCOPE", 0, "webhooks.E015"),
        ("WEBHOOKS_MAX_WEBHOOKS_PER_SCOPE", "20", "webhooks.E015"),
    ],
)
def test_wrong_setting_is_reported(settings, setting, value, check_id):
    assert check_id not in ids()
    setattr(settings, setting, value)
    assert check_id in ids()


@pytest.mark.parametrize(
    "keys,message",
    [
        ([""], "WEBHOOKS_ENCRYPTION_KEYS is empty: no key is set"),  # the variable unset
        ([Fernet.generate_key().decode(), ""], "Key 2 of WEBHOOKS_ENCRYPTION_KEYS is empty"),
    ],
)
def test_keys_from_an_unset_or_trailing_comma_variable_say_so(settings, keys, message):
    settings.WEBHOOKS_ENCRYPTION_KEYS = keys
    [error] = [m for m in check_settings() if m.id == "webhooks.E010"]
    assert error.msg.startswith(message)


def test_private_networks_allowed_in_production_warn(settings):
    settings.DEBUG = False
    settings.WEBHOOKS_ALLOWED_NETWORKS = ["10.0.0.0/8"]
    assert "webhooks.W001" in ids()
    settings.WEBHOOKS_ALLOWED_NETWORKS = []
    assert "webhooks.W001" not in ids()


def test_plain_http_allowed_in_production_warns(settings):
    settings.DEBUG = False
    settings.WEBHOOKS_ALLOW_HTTP = True
    assert "webhooks.W005" in ids()
    settings.WEBHOOKS_ALLOW_HTTP = False
    assert "webhooks.W005" not in ids()
    settings.DEBUG, settings.WEBHOOKS_ALLOW_HTTP = True, True
    assert "webhooks.W005" not in ids()


def test_broker_retries_warn(settings):
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "max_attempts": 0}
    assert "webhooks.W002" in ids()


def test_orm_broker_without_the_outbox_broker_warns(settings):
    base = {
        k: v for k, v in settings.Q_CLUSTER.items() if k not in ("orm", "redis", "broker_class")
    }
    orm = {**base, "orm": "default"}
    settings.Q_CLUSTER = orm
    [warning] = [e for e in checks.check_settings() if e.id == "webhooks.W003"]
    assert "Q_CLUSTER['broker_class'] = 'webhooks.broker.OutboxBroker'" in warning.hint
    settings.Q_CLUSTER = {**orm, "broker_class": "webhooks.broker.OutboxBroker"}
    assert "webhooks.W003" not in ids()
    settings.Q_CLUSTER = {**base, "redis": "redis://127.0.0.1:6379/0"}  # a network broker
    assert "webhooks.W003" not in ids()


def test_manage_py_check_runs_the_checks(settings, db):
    # Django 6.1 checks JSONField support on the database itself.
    settings.WEBHOOKS_TIMEOUT = -1
    from django.core.management.base import SystemCheckError

    with pytest.raises(SystemCheckError, match="webhooks.E001"):
        call_command("check")


def sqlite_errors(settings, options, name="/srv/site/db.sqlite3"):
    databases = {
        "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": name, "OPTIONS": options}
    }
    return [
        e for e in checks.sqlite_errors(databases, {"orm": "default"}) if e.id == "webhooks.E011"
    ]


def test_sqlite_without_locking_options_is_refused_and_the_fix_is_named(settings):
    [error] = sqlite_errors(settings, {})
    assert "database is locked" in error.msg
    for words in ("'transaction_mode': 'IMMEDIATE'", "'timeout': 20", "journal_mode=WAL"):
        assert words in error.hint
    # Partly configured: only what is missing is named.
    [error] = sqlite_errors(settings, {"transaction_mode": "IMMEDIATE", "timeout": 30})
    assert "init_command" in error.hint and "transaction_mode" not in error.hint


def test_sqlite_with_the_options_passes(settings):
    from webhooks.checks import SQLITE_OPTIONS

    assert sqlite_errors(settings, dict(SQLITE_OPTIONS)) == []
    assert sqlite_errors(settings, {}, name=":memory:") == []  # one process, nothing to share


def test_the_example_and_test_settings_pass_the_sqlite_check():
    assert [e for e in checks.check_sqlite() if e.id == "webhooks.E011"] == []


MIDDLEWARE_NOW = [
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
ATOMIC_UNSAFE = "webhooks.middleware.AtomicUnsafeRequestsMiddleware"


def request_checks(atomic_requests, middleware, name="/srv/site/db.sqlite3"):
    """The ids of the checks about how requests use a SQLite file with E011's options."""
    from webhooks.checks import SQLITE_OPTIONS

    database = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": name,
        "OPTIONS": dict(SQLITE_OPTIONS),
        "ATOMIC_REQUESTS": atomic_requests,
    }
    found = checks.sqlite_errors({"default": database}, {"orm": "default"}, middleware)
    return {e.id: e for e in found}


def test_sqlite_with_atomic_requests_and_immediate_warns_that_reads_wait_for_writes():
    found = request_checks(True, MIDDLEWARE_NOW)
    assert list(found) == ["webhooks.W006"]
    assert "page view" in found["webhooks.W006"].msg
    assert ATOMIC_UNSAFE in found["webhooks.W006"].hint
    assert "ATOMIC_REQUESTS = False" in found["webhooks.W006"].hint


def test_sqlite_with_neither_atomic_requests_nor_the_middleware_warns_that_saves_are_unsafe():
    found = request_checks(False, MIDDLEWARE_NOW)
    assert list(found) == ["webhooks.W007"]
    assert "autocommit" in found["webhooks.W007"].msg
    assert ATOMIC_UNSAFE in found["webhooks.W007"].hint


def test_sqlite_with_the_middleware_last_and_no_atomic_requests_passes():
    assert request_checks(False, [*MIDDLEWARE_NOW, ATOMIC_UNSAFE]) == {}
    # In memory (one process) there is no other process's write to wait for.
    assert request_checks(True, MIDDLEWARE_NOW, name=":memory:") == {}


def test_the_middleware_anywhere_but_last_is_refused_as_it_would_skip_csrf():
    found = request_checks(False, [ATOMIC_UNSAFE, *MIDDLEWARE_NOW])
    assert list(found) == ["webhooks.E016"]
    assert "CSRF" in found["webhooks.E016"].msg


def test_the_example_and_test_settings_pass_the_request_checks():
    ids = {e.id for e in checks.check_sqlite()}
    assert not ids & {"webhooks.W006", "webhooks.W007", "webhooks.E016"}


def test_a_lease_must_outlast_a_whole_request_and_its_recording(settings):
    """A request may take the timeout plus the deadline margin, then its outcome is recorded."""
    settings.WEBHOOKS_TIMEOUT = 10
    settings.WEBHOOKS_LEASE_SECONDS = 11  # longer than the timeout, shorter than all of it
    assert "webhooks.E004" in ids()
    settings.WEBHOOKS_LEASE_SECONDS = 12
    assert "webhooks.E004" not in ids()


def test_no_limit_on_webhooks_per_scope_is_allowed(settings):
    settings.WEBHOOKS_MAX_WEBHOOKS_PER_SCOPE = None
    assert "webhooks.E015" not in ids()


def check_output() -> str:
    out, err = StringIO(), StringIO()
    call_command("check", stdout=out, stderr=err)
    return out.getvalue() + err.getvalue()


def test_a_valid_key_that_cannot_decrypt_the_stored_secrets_is_reported(settings, db):
    old_key, other_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.WEBHOOKS_ENCRYPTION_KEYS = [old_key]
    SubscriptionFactory(basic_auth_username="hooks", basic_auth_password="pw")
    SubscriptionFactory()
    assert "webhooks.W004" not in check_output()

    settings.WEBHOOKS_ENCRYPTION_KEYS = [other_key]  # the old key was replaced, not kept
    text = check_output()
    problem = "2 of the 2 webhooks checked have secrets that no key of WEBHOOKS_ENCRYPTION_KEYS"
    hint = "Put the key that encrypted them back in WEBHOOKS_ENCRYPTION_KEYS, after the new one"
    assert "webhooks.W004" in text and problem in text and hint in text
    settings.WEBHOOKS_ENCRYPTION_KEYS = [other_key, old_key]  # the fix the hint names
    assert "webhooks.W004" not in check_output()


def test_the_keys_check_reads_only_a_small_sample(settings, db, django_assert_max_num_queries):
    settings.WEBHOOKS_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    SubscriptionFactory.create_batch(checks.SECRETS_SAMPLE + 5)
    settings.WEBHOOKS_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with django_assert_max_num_queries(2):
        problem = checks.stored_secrets_problem()
    assert problem.startswith(f"{checks.SECRETS_SAMPLE} of the {checks.SECRETS_SAMPLE} webhooks")
    assert Subscription.objects.count() == checks.SECRETS_SAMPLE + 5


@pytest.mark.parametrize(
    "database_url",
    [
        "sqlite:///{tmp}/not-migrated.sqlite3",  # before migrate: no tables yet
        "postgres://postgres@127.0.0.1:1/unreachable",  # nothing listens on port 1
    ],
)
def test_manage_py_check_passes_before_migrate_and_with_the_database_down(tmp_path, database_url):
    env = {**os.environ, "DATABASE_URL": database_url.format(tmp=tmp_path)}
    env.pop("WEBHOOKS_ENCRYPTION_KEYS", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout
    assert "Traceback" not in result.stderr
