"""HTTPS deliveries against a real TLS receiver on 127.0.0.1: certificates and host names
are checked, and a new connection does not re-read the trust store."""

from __future__ import annotations

import ssl

import pytest

from tests.certificates import self_signed, server_context
from tests.receiver import Answer, Receiver
from webhooks import delivery as http
from webhooks.delivery import OutgoingRequest


def serving(cert_file, key_file) -> Receiver:
    """An HTTPS receiver that closes every connection after answering (so each delivery
    opens a new one)."""
    receiver = Receiver(tls=server_context(cert_file, key_file))
    receiver.default = Answer(status=200, headers={"Connection": "close"})
    return receiver


@pytest.fixture
def tls_receiver(tmp_path):
    """An HTTPS receiver with a certificate for 127.0.0.1, and that certificate."""
    cert_file, key_file = self_signed(tmp_path)
    receiver = serving(cert_file, key_file)
    yield receiver, cert_file
    http.close_connections()
    receiver.stop()


def post(url: str) -> http.Outcome:
    return http.post(OutgoingRequest(url, {"Content-Type": "application/json"}, b"{}"))


def test_an_untrusted_certificate_fails_as_a_tls_error(tls_receiver):
    receiver, _ = tls_receiver
    outcome = post(receiver.url)
    assert outcome.error_kind == "tls_error", outcome
    assert receiver.requests == []


def test_a_trusted_certificate_for_another_name_fails(tmp_path, monkeypatch):
    cert_file, key_file = self_signed(tmp_path, name="other.example", for_ip=False)
    receiver = serving(cert_file, key_file)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))  # trusted, but not for 127.0.0.1
    try:
        outcome = post(receiver.url)
    finally:
        http.close_connections()
        receiver.stop()
    assert outcome.error_kind == "tls_error", outcome
    assert "127.0.0.1" in outcome.error_message  # the name that did not match
    assert receiver.requests == []


def test_new_connections_share_one_trust_store_read(tls_receiver, monkeypatch):
    receiver, cert_file = tls_receiver
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))  # the system's store, as tests see it
    reads = []
    real = ssl.SSLContext.load_default_certs

    def counted(self, *args, **kwargs):
        reads.append(self)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_default_certs", counted)
    outcomes = [post(receiver.url) for _ in range(5)]
    assert [o.status_code for o in outcomes] == [200] * 5, outcomes
    assert len(receiver.requests) == 5
    # Each request came on a new connection (the receiver closed the previous one), and
    # the trust store was read at most once: ~18 ms of CPU per connection otherwise.
    assert len(reads) <= 1
