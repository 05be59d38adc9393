"""Signatures as the Standard Webhooks specification defines them."""

import base64
import hashlib
import hmac

import pytest

from webhooks import signing

# The reference vector published with the Standard Webhooks libraries.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def independent_signature(secret, msg_id, timestamp, body):
    """Computed from the spec's words, not with our signer."""
    key = base64.b64decode(secret.split("_", 1)[1])
    mac = hmac.new(key, f"{msg_id}.{timestamp}.{body.decode()}".encode(), hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def test_signature_matches_the_spec_reference_vector():
    assert signing.sign(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE
    assert independent_signature(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE


def test_generated_secret_has_prefix_and_enough_random_bytes():
    secret = signing.generate_secret()
    assert secret.startswith("whsec_")
    assert 24 <= len(base64.b64decode(secret.removeprefix("whsec_"))) <= 64
    assert secret != signing.generate_secret()


def test_signature_header_signs_with_every_secret_space_separated():
    old, new = signing.generate_secret(), signing.generate_secret()
    header = signing.signature_header([new, old], "msg_1", 1700000000, b"{}")
    parts = header.split(" ")
    assert parts == [
        independent_signature(new, "msg_1", 1700000000, b"{}"),
        independent_signature(old, "msg_1", 1700000000, b"{}"),
    ]


def test_verify_accepts_genuine_and_refuses_tampered_or_stale():
    secret = signing.generate_secret()
    body = b'{"a":1}'
    headers = {
        "webhook-id": "msg_x",
        "webhook-timestamp": "1700000000",
        "webhook-signature": signing.sign(secret, "msg_x", 1700000000, body),
    }
    signing.verify(secret, headers, body, now=1700000010)
    with pytest.raises(signing.InvalidSignature):
        signing.verify(secret, headers, b'{"a":2}', now=1700000010)
    with pytest.raises(signing.InvalidSignature):
        signing.verify(secret, headers, body, now=1700000000 + 3600)
    with pytest.raises(signing.InvalidSignature):
        signing.verify(signing.generate_secret(), headers, body, now=1700000010)
