"""Standard Webhooks signatures: secrets, signing, verification.

Spec: https://www.standardwebhooks.com/ — HMAC-SHA256 over ``{id}.{timestamp}.{body}``,
keyed with the base64-decoded part of a ``whsec_`` secret, sent as ``v1,<base64>``;
several signatures are separated by spaces.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets as _secrets
import time

SECRET_PREFIX = "whsec_"
SIGNATURE_VERSION = "v1"
DEFAULT_TOLERANCE = 5 * 60
#: How many random bytes a signing secret holds (Standard Webhooks: 24 to 64).
SECRET_BYTES = (24, 64)


class InvalidSignature(Exception):
    """The signature, timestamp or headers of a request do not check out."""


def generate_secret(num_bytes: int = 32) -> str:
    if not SECRET_BYTES[0] <= num_bytes <= SECRET_BYTES[1]:
        raise ValueError("A signing secret has 24 to 64 random bytes.")
    return SECRET_PREFIX + base64.b64encode(_secrets.token_bytes(num_bytes)).decode()


def secret_problem(secret) -> str | None:
    """Why ``secret`` cannot sign (in words that never repeat it), or None if it can:
    ``whsec_`` followed by the base64 of 24 to 64 bytes, as ``generate_secret`` makes."""
    if not isinstance(secret, str) or not secret.startswith(SECRET_PREFIX):
        return f"it does not start with {SECRET_PREFIX}"
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        return f"what follows {SECRET_PREFIX} is not base64"
    low, high = SECRET_BYTES
    if not low <= len(key) <= high:
        return f"its key is {len(key)} bytes long, not {low} to {high}"
    return None


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def signature_header(secrets: list[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: one signature per secret, space-separated."""
    return " ".join(sign(s, msg_id, timestamp, body) for s in secrets)


def verify(
    secret: str,
    headers: dict[str, str],
    body: bytes,
    *,
    tolerance: int = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> None:
    """Check a received request; raise :class:`InvalidSignature` if it is not genuine."""
    lower = {k.lower(): v for k, v in headers.items()}
    try:
        msg_id = lower["webhook-id"]
        timestamp = int(lower["webhook-timestamp"])
        signatures = lower["webhook-signature"].split()
    except (KeyError, ValueError) as exc:
        raise InvalidSignature("missing or malformed webhook-* headers") from exc
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance:
        raise InvalidSignature("timestamp outside the tolerance window")
    expected = sign(secret, msg_id, timestamp, body)
    if not any(hmac.compare_digest(expected, candidate) for candidate in signatures):
        raise InvalidSignature("no matching signature")
