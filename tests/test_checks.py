"""Each system check id fires on its wrong setting."""

import pytest
from django.core.management import call_command

from webhooks.checks import check_settings


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
        ("WEBHOOKS_BATCH_SIZE", 2.5, "webhooks.E007"),
        ("WEBHOOKS_BROKER_BACKOFF", -1, "webhooks.E008"),
        ("WEBHOOKS_SCOPE_CHOICES", "nowhere.choices", "webhooks.E009"),
        ("WEBHOOKS_API_PERMISSION_CLASSES", ["nowhere.Permission"], "webhooks.E009"),
        ("WEBHOOKS_KEEP_SUCCEEDED_DAYS", 0, "webhooks.E010"),
        ("WEBHOOKS_KEEP_FAILED_DAYS", "90", "webhooks.E010"),
        ("WEBHOOKS_KEEP_EVENTS_DAYS", -1, "webhooks.E010"),
        ("WEBHOOKS_PURGE_BATCH_SIZE", 0, "webhooks.E011"),
        ("WEBHOOKS_PURGE_TIME_LIMIT", "60", "webhooks.E011"),
    ],
)
def test_wrong_setting_is_reported(settings, setting, value, check_id):
    assert check_id not in ids()
    setattr(settings, setting, value)
    assert check_id in ids()


def test_private_networks_allowed_in_production_warn(settings):
    settings.DEBUG = False
    settings.WEBHOOKS_ALLOWED_NETWORKS = ["10.0.0.0/8"]
    assert "webhooks.W001" in ids()
    settings.WEBHOOKS_ALLOWED_NETWORKS = []
    assert "webhooks.W001" not in ids()


def test_broker_retries_warn(settings):
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "max_attempts": 0}
    assert "webhooks.W002" in ids()


def test_manage_py_check_runs_the_checks(settings, db):
    # Django 6.1 checks JSONField support on the database itself.
    settings.WEBHOOKS_TIMEOUT = -1
    from django.core.management.base import SystemCheckError

    with pytest.raises(SystemCheckError, match="webhooks.E001"):
        call_command("check")
