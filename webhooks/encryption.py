"""Secrets at rest: signing secrets, basic-auth passwords and extra headers are stored
encrypted with ``cryptography``'s MultiFernet (AES-128-CBC + HMAC-SHA256, authenticated).

Keys come from ``WEBHOOKS_ENCRYPTION_KEYS``: a list of Fernet keys, the first encrypts,
every one decrypts. To rotate, put a new key first, deploy, run
``manage.py webhooks_reencrypt``, then drop the old key. Make a key with::

    python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"
"""

from __future__ import annotations

import json

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.core.exceptions import ImproperlyConfigured
from django.db import models

from .conf import conf

#: Marks a stored value as ciphertext (anything else is a row written before encryption,
#: which the data migration and ``webhooks_reencrypt`` encrypt).
PREFIX = "fernet:"

_cache: dict = {}


def keys_problem(keys) -> str | None:
    """What is wrong with ``keys`` as WEBHOOKS_ENCRYPTION_KEYS, or None."""
    if isinstance(keys, str | bytes) or not isinstance(keys, list | tuple) or not keys:
        return "WEBHOOKS_ENCRYPTION_KEYS must be a non-empty list of Fernet keys."
    for number, key in enumerate(keys, 1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            return (
                f"Key {number} of WEBHOOKS_ENCRYPTION_KEYS is not a Fernet key "
                "(32 url-safe base64-encoded bytes)."
            )
    return None


def multifernet() -> MultiFernet:
    keys = conf.ENCRYPTION_KEYS
    cache_key = tuple(keys) if isinstance(keys, list | tuple) else keys
    if _cache.get("keys") != cache_key:
        problem = keys_problem(keys)
        if problem:
            raise ImproperlyConfigured(problem + " " + GENERATE_HINT)
        _cache["fernet"] = MultiFernet([Fernet(key) for key in keys])
        _cache["keys"] = cache_key
    return _cache["fernet"]


GENERATE_HINT = (
    'Make one with: python -c "from cryptography.fernet import Fernet; '
    'print(Fernet.generate_key().decode())"'
)


def encrypt(text: str) -> str:
    return PREFIX + multifernet().encrypt(text.encode("utf-8")).decode("ascii")


def decrypt(stored: str) -> str:
    if not stored.startswith(PREFIX):
        return stored  # written before encryption; encrypted by the migration
    try:
        return multifernet().decrypt(stored[len(PREFIX) :].encode("ascii")).decode("utf-8")
    except InvalidToken:
        raise ImproperlyConfigured(
            "A webhook secret cannot be decrypted with any key of WEBHOOKS_ENCRYPTION_KEYS: "
            "was the key that encrypted it removed? Put it back (after the new one)."
        ) from None


class EncryptedTextField(models.TextField):
    """Text stored encrypted. It cannot be searched, filtered or ordered by (only
    ``isnull``): a lookup on a secret would be an oracle, and ciphertext sorts randomly."""

    def from_db_value(self, value, expression, connection):
        if value is None:
            return value
        return self.from_plain(decrypt(value))

    def to_python(self, value):
        if isinstance(value, str) and value.startswith(PREFIX):
            return self.from_plain(decrypt(value))
        return value

    def from_plain(self, text: str):
        return text

    def to_plain(self, value) -> str:
        return value

    def get_prep_value(self, value):
        if value is None:
            return None
        text = self.to_plain(value)
        if text == "" or text.startswith(PREFIX):
            return text  # empty stays empty: "no password" is not a secret
        return encrypt(text)

    def get_lookup(self, lookup_name):
        if lookup_name == "isnull":
            return super().get_lookup(lookup_name)
        return None

    def get_transform(self, name):
        return None


class EncryptedJSONField(EncryptedTextField):
    """A JSON object (extra headers) stored encrypted as a whole."""

    def from_plain(self, text: str):
        return json.loads(text) if text else {}

    def to_plain(self, value) -> str:
        if isinstance(value, str):
            return value
        return json.dumps(value, ensure_ascii=False, sort_keys=True) if value else ""

    def to_python(self, value):
        if isinstance(value, str):
            return self.from_plain(decrypt(value))
        return value

    def value_to_string(self, obj):
        return self.to_plain(self.value_from_object(obj))


#: The encrypted columns of a Subscription.
ENCRYPTED_FIELDS = ("secret", "previous_secret", "basic_auth_password", "headers")


def reencrypt(model, using: str = "default") -> int:
    """Write every Subscription's secrets again, encrypted with the first key.

    Rows written before encryption are encrypted; rows encrypted with an older key are
    moved to the first one. Returns how many rows were written.
    """
    manager = model._default_manager.db_manager(using)
    count = 0
    for row in manager.only("pk", *ENCRYPTED_FIELDS).iterator(chunk_size=500):
        values = {name: getattr(row, name) for name in ENCRYPTED_FIELDS}
        manager.filter(pk=row.pk).update(**values)
        count += 1
    return count
