"""The migration that brought encryption encrypts the rows written before it (and its
reverse gives them back in clear), on whichever database the suite runs."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from webhooks.encryption import PREFIX

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("webhooks", "0002_delivery_health_index")]
AFTER = [("webhooks", "0003_encrypt_secrets")]


def migrate(targets=None):
    """Migrate the test database to ``targets`` (None: every app at its latest); returns
    the apps as they are there."""
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets or executor.loader.graph.leaf_nodes())
    return executor.loader.project_state(targets).apps


def raw_row(pk_db):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT secret, basic_auth_password, headers FROM webhooks_subscription WHERE id = %s",
            [pk_db],
        )
        return cursor.fetchone()


def test_existing_rows_are_encrypted_and_decrypted_back():
    old_apps = migrate(BEFORE)
    try:
        OldSubscription = old_apps.get_model("webhooks", "Subscription")
        old = OldSubscription.objects.create(
            url="https://example.com/hook",
            secret="whsec_legacylegacylegacylegacy",
            basic_auth_username="u",
            basic_auth_password="legacy-pw",
            headers={"X-Api-Key": "k-1"},
        )
        pk_db = OldSubscription._meta.pk.get_db_prep_value(old.pk, connection)
        new_apps = migrate(AFTER)
        secret, password, headers = (str(v) for v in raw_row(pk_db))
        assert secret.startswith(PREFIX) and password.startswith(PREFIX)
        assert headers.startswith(PREFIX) and "k-1" not in headers
        row = new_apps.get_model("webhooks", "Subscription").objects.get(pk=old.pk)
        assert (row.secret, row.basic_auth_password, row.headers) == (
            "whsec_legacylegacylegacylegacy",
            "legacy-pw",
            {"X-Api-Key": "k-1"},
        )
        old_apps = migrate(BEFORE)  # and back: plain again, in the old column types
        row = old_apps.get_model("webhooks", "Subscription").objects.get(pk=old.pk)
        assert (row.secret, row.basic_auth_password, row.headers) == (
            "whsec_legacylegacylegacylegacy",
            "legacy-pw",
            {"X-Api-Key": "k-1"},
        )
    finally:
        migrate()  # every app at its latest again, for the tests after this one
