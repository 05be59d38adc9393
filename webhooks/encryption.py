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
from django.core.exceptions import ImproperlyConfigured, ValidationError
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
    if all(isinstance(key, str) and not key.strip() for key in keys):
        # ``os.environ.get("WEBHOOKS_ENCRYPTION_KEYS", "").split(",")`` with nothing set.
        return (
            "WEBHOOKS_ENCRYPTION_KEYS is empty: no key is set (is the "
            "WEBHOOKS_ENCRYPTION_KEYS environment variable set?). It must be a non-empty "
            "list of Fernet keys."
        )
    for number, key in enumerate(keys, 1):
        if isinstance(key, str) and not key.strip():
            return f"Key {number} of WEBHOOKS_ENCRYPTION_KEYS is empty (a stray comma?)."
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


class UnreadableSecret:
    """What an encrypted column reads as when its stored value cannot be read back: it
    does not decrypt with any key of WEBHOOKS_ENCRYPTION_KEYS (the key that wrote it was
    removed, or it was never ours: written by raw SQL, a restore under another key), or
    it decrypts to something that is not the column's kind of value.

    Reading such a row never raises: one bad row must not stop the fan-out, the sweeper
    or a page for every other webhook. The value is recognisably not a secret (it is no
    ``str``), so the engine refuses to send with it (``delivery.build_request`` fails that
    webhook's attempts with a reason saying so), and it never shows the stored text.
    Saved back unchanged, it writes the stored text back as it was: putting the old key
    back still repairs the row. Only a value read from the database is ever one of these.
    """

    __slots__ = ("stored", "problem")

    #: ``problem``: what is wrong.
    UNDECRYPTABLE = "undecryptable"  # no key of WEBHOOKS_ENCRYPTION_KEYS decrypts it
    NO_KEYS = "no_keys"  # WEBHOOKS_ENCRYPTION_KEYS itself is missing or malformed
    UNREADABLE = "unreadable"  # decrypted (or written in clear), but not the column's kind

    def __init__(self, stored, problem: str = UNDECRYPTABLE) -> None:
        self.stored = stored
        self.problem = problem

    @property
    def undecryptable(self) -> bool:
        return self.problem != self.UNREADABLE

    def __str__(self) -> str:
        return "[cannot be decrypted]" if self.undecryptable else "[unreadable]"

    def __repr__(self) -> str:
        return f"<UnreadableSecret: {self.problem}>"  # never the stored text

    def __eq__(self, other) -> bool:
        return isinstance(other, UnreadableSecret) and other.stored == self.stored

    def __hash__(self) -> int:
        return hash(self.stored)


def read(stored) -> str | UnreadableSecret:
    """The clear text of a stored value, or an :class:`UnreadableSecret`. Never raises.

    A value without the prefix was written before encryption, in clear (the data
    migration and ``webhooks_reencrypt`` encrypt it): nothing written through the model
    field since can lack the prefix, since every value coming in is encrypted.
    """
    if not isinstance(stored, str):  # SQLite keeps whatever raw SQL put in a column
        return UnreadableSecret(stored, UnreadableSecret.UNREADABLE)
    if not stored.startswith(PREFIX):
        return stored
    try:
        fernet = multifernet()
    except ImproperlyConfigured:  # the system check says what is wrong with the setting
        return UnreadableSecret(stored, UnreadableSecret.NO_KEYS)
    try:
        return fernet.decrypt(stored[len(PREFIX) :].encode("ascii")).decode("utf-8")
    except (InvalidToken, ValueError, TypeError):  # ValueError: not ASCII, not UTF-8
        return UnreadableSecret(stored)


class EncryptedTextField(models.TextField):
    """Text stored encrypted. It cannot be searched, filtered or ordered by (only
    ``isnull``): a lookup on a secret would be an oracle, and ciphertext sorts randomly.

    Every value coming in (a form, the API, ``save()``, ``QuerySet.update()``) is
    encrypted, whatever it looks like: a value is never taken as ciphertext because it
    starts with the prefix, or anyone could store ``fernet:<another row's ciphertext>``
    and have it decrypted into their own requests, or store ``fernet:junk`` that no key
    reads. Decryption happens in one place only, reading from the database
    (``from_db_value``); a value that cannot be read comes back as an
    :class:`UnreadableSecret` rather than raising.
    """

    def from_db_value(self, value, expression, connection):
        if value is None:
            return value
        text = read(value)
        if isinstance(text, UnreadableSecret):
            return text
        try:
            return self.from_plain(text)
        except ValueError:  # decrypted (or written in clear), but not what this column holds
            return UnreadableSecret(value, UnreadableSecret.UNREADABLE)

    def to_python(self, value):
        # Never decrypts: a value given to the field is clear text, whatever its prefix.
        if value is None or isinstance(value, str | UnreadableSecret):
            return value
        return str(value)

    def from_plain(self, text: str):
        return text

    def to_plain(self, value) -> str:
        return value if isinstance(value, str) else str(value)

    def get_prep_value(self, value):
        if value is None:
            return None
        if isinstance(value, UnreadableSecret):
            # Read from this very column and saved back untouched (a form saved without
            # a new password, ``webhooks_reencrypt``): the stored text stays as it was,
            # so putting the lost key back still repairs it.
            return value.stored
        text = self.to_plain(value)
        if text == "":
            return text  # empty stays empty: "no password" is not a secret
        return encrypt(text)

    def value_to_string(self, obj):
        value = self.value_from_object(obj)
        if isinstance(value, UnreadableSecret):
            return str(value)  # never the stored text
        return self.to_plain(value) if value is not None else None

    def get_lookup(self, lookup_name):
        if lookup_name == "isnull":
            return super().get_lookup(lookup_name)
        return None

    def get_transform(self, name):
        return None


class EncryptedJSONField(EncryptedTextField):
    """A JSON value (extra headers) stored encrypted as a whole.

    Its Python value is what is stored, as with Django's ``JSONField``: a ``str`` is a
    JSON string, never JSON text nor ciphertext. (``to_python`` parses JSON text, for
    fixtures, whose ``value_to_string`` is JSON text.)
    """

    def from_plain(self, text: str):
        return json.loads(text) if text else {}

    def to_plain(self, value) -> str:
        if value in (None, "", {}, []):
            return ""
        return json.dumps(value, ensure_ascii=False, sort_keys=True)

    def to_python(self, value):
        if isinstance(value, str):
            try:
                return json.loads(value) if value else {}
            except ValueError:
                raise ValidationError("Enter valid JSON.", code="invalid") from None
        return value


def unreadable_fields(instance) -> list[str]:
    """The encrypted fields of ``instance`` whose stored value cannot be read."""
    return [
        name for name in ENCRYPTED_FIELDS if isinstance(getattr(instance, name), UnreadableSecret)
    ]


#: The encrypted columns of a Subscription, as a person names them.
FIELD_WORDS = {
    "secret": "signing secret",
    "previous_secret": "previous signing secret",
    "basic_auth_password": "basic-auth password",
    "headers": "extra headers",
}
ENCRYPTED_FIELDS = tuple(FIELD_WORDS)


def reencrypt(model, using: str = "default", *, unreadable: list | None = None) -> int:
    """Write every Subscription's secrets again, encrypted with the first key.

    Rows written before encryption are encrypted; rows encrypted with an older key are
    moved to the first one. Returns how many rows were written. A value no key can read
    (:class:`UnreadableSecret`) is left as it is stored (put its key back and run this
    again), and its row's primary key is added to ``unreadable`` when a list is given.
    Values are read decrypted and written encrypted once: nothing is encrypted twice.
    """
    manager = model._default_manager.db_manager(using)
    count = 0
    for row in manager.only("pk", *ENCRYPTED_FIELDS).iterator(chunk_size=500):
        values = {name: getattr(row, name) for name in ENCRYPTED_FIELDS}
        readable = {k: v for k, v in values.items() if not isinstance(v, UnreadableSecret)}
        if len(readable) < len(values) and unreadable is not None:
            unreadable.append(row.pk)
        if readable:
            manager.filter(pk=row.pk).update(**readable)
        count += 1
    return count
