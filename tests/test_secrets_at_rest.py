"""Signing secrets, basic-auth passwords and extra headers are encrypted at rest."""

from __future__ import annotations

import io

import pytest
from cryptography.fernet import Fernet
from django.core.checks import run_checks
from django.core.exceptions import FieldError, ImproperlyConfigured
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from tests.factories import SubscriptionFactory
from webhooks import signing
from webhooks.encryption import PREFIX, UnreadableSecret, reencrypt
from webhooks.models import Subscription

pytestmark = pytest.mark.django_db

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def stored(sub) -> dict:
    """What the database holds for a subscription's secret columns."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT secret, previous_secret, basic_auth_password, headers "
            "FROM webhooks_subscription WHERE id = %s",
            [Subscription._meta.pk.get_db_prep_value(sub.pk, connection)],
        )
        row = cursor.fetchone()
    names = ["secret", "previous_secret", "basic_auth_password", "headers"]
    return dict(zip(names, row, strict=True))


def write_raw(sub, **columns):
    assignments = ", ".join(f"{name} = %s" for name in columns)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE webhooks_subscription SET {assignments} WHERE id = %s",
            [*columns.values(), Subscription._meta.pk.get_db_prep_value(sub.pk, connection)],
        )


def test_secrets_are_stored_encrypted_and_read_in_clear():
    sub = SubscriptionFactory(
        basic_auth_username="u",
        basic_auth_password="hunter2",
        headers={"X-Api-Key": "k-123", "X-Team": "payments"},
    )
    raw = stored(sub)
    for column in ("secret", "basic_auth_password", "headers"):
        assert raw[column].startswith(PREFIX), column
    assert "hunter2" not in str(raw) and "k-123" not in str(raw) and "whsec_" not in str(raw)
    fresh = Subscription.objects.get(pk=sub.pk)
    assert fresh.secret == sub.secret and fresh.secret.startswith("whsec_")
    assert fresh.basic_auth_password == "hunter2"
    assert fresh.headers == {"X-Api-Key": "k-123", "X-Team": "payments"}
    assert raw["previous_secret"] == ""  # nothing to hide


def test_signing_works_with_the_decrypted_secret():
    sub = Subscription.objects.get(pk=SubscriptionFactory().pk)
    header = signing.signature_header(sub.signing_secrets(), "msg_1", 1700000000, b"{}")
    headers = {"webhook-id": "msg_1", "webhook-timestamp": "1700000000"}
    signing.verify(sub.secret, {**headers, "webhook-signature": header}, b"{}", now=1700000000)


def test_secrets_cannot_be_filtered_on():
    sub = SubscriptionFactory(basic_auth_username="u", basic_auth_password="hunter2")
    for lookup in ("secret__startswith", "basic_auth_password", "headers__contains"):
        with pytest.raises(FieldError):
            Subscription.objects.filter(**{lookup: "whsec_"}).count()
    assert Subscription.objects.filter(secret__isnull=False).get() == sub


def test_rotation_old_keys_still_decrypt_and_the_command_moves_rows_to_the_new_key():
    with override_settings(WEBHOOKS_ENCRYPTION_KEYS=[OLD]):
        sub = SubscriptionFactory(basic_auth_username="u", basic_auth_password="hunter2")
        before = stored(sub)
    with override_settings(WEBHOOKS_ENCRYPTION_KEYS=[NEW, OLD]):
        assert Subscription.objects.get(pk=sub.pk).basic_auth_password == "hunter2"
        out = io.StringIO()
        call_command("webhooks_reencrypt", stdout=out)
        assert "1 webhooks re-encrypted" in out.getvalue()
        after = stored(sub)
        assert after["secret"] != before["secret"]
    with override_settings(WEBHOOKS_ENCRYPTION_KEYS=[NEW]):  # the old key can go now
        fresh = Subscription.objects.get(pk=sub.pk)
        assert (fresh.secret, fresh.basic_auth_password) == (sub.secret, "hunter2")
    with override_settings(WEBHOOKS_ENCRYPTION_KEYS=[OLD]):  # and a lost key says so
        unreadable = Subscription.objects.get(pk=sub.pk)  # reading it never raises
        assert isinstance(unreadable.secret, UnreadableSecret)
        assert isinstance(unreadable.basic_auth_password, UnreadableSecret)
        assert str(unreadable.secret) == "[cannot be decrypted]"
        out, err = io.StringIO(), io.StringIO()
        call_command("webhooks_reencrypt", stdout=out, stderr=err)
        assert "cannot be decrypted" not in out.getvalue()
        assert "no key of WEBHOOKS_ENCRYPTION_KEYS decrypts" in err.getvalue()
        assert str(sub.pk) in err.getvalue()
        assert stored(sub) == after  # left as stored: putting the key back repairs it
    with override_settings(WEBHOOKS_ENCRYPTION_KEYS=[NEW]):
        assert Subscription.objects.get(pk=sub.pk).basic_auth_password == "hunter2"


def test_rows_written_before_encryption_are_encrypted_by_the_migration_step():
    sub = SubscriptionFactory()
    write_raw(
        sub,
        secret="whsec_plainplainplainplainplainplain",
        basic_auth_password="legacy-pw",
        headers='{"X-Team": "a"}',
    )
    legacy = Subscription.objects.get(pk=sub.pk)  # still readable before the migration runs
    assert legacy.secret == "whsec_plainplainplainplainplainplain"
    assert legacy.headers == {"X-Team": "a"}
    assert reencrypt(Subscription) == 1
    raw = stored(sub)
    assert raw["secret"].startswith(PREFIX) and raw["basic_auth_password"].startswith(PREFIX)
    fresh = Subscription.objects.get(pk=sub.pk)
    assert (fresh.secret, fresh.basic_auth_password, fresh.headers) == (
        "whsec_plainplainplainplainplainplain",
        "legacy-pw",
        {"X-Team": "a"},
    )


@pytest.mark.parametrize(
    "keys",
    [None, [], "one-key-as-a-string", ["not-a-fernet-key"]],
    ids=["unset", "empty", "string", "bad-key"],
)
def test_a_missing_or_bad_key_fails_the_system_check(settings, keys):
    if keys is None:
        del settings.WEBHOOKS_ENCRYPTION_KEYS
    else:
        settings.WEBHOOKS_ENCRYPTION_KEYS = keys
    errors = [e for e in run_checks() if e.id == "webhooks.E010"]
    assert errors and "Fernet.generate_key()" in errors[0].hint
    with pytest.raises(ImproperlyConfigured, match="WEBHOOKS_ENCRYPTION_KEYS"):
        SubscriptionFactory()


def test_valid_keys_pass_the_check():
    assert not [e for e in run_checks() if e.id == "webhooks.E010"]
