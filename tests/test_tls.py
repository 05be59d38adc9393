"""HTTPS deliveries against a real TLS receiver on 127.0.0.1: certificates and host names
are checked, and a new connection does not re-read the trust store."""

from __future__ import annotations

import datetime
import ipaddress
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.receiver import Answer, Receiver
from webhooks import delivery as http
from webhooks.delivery import OutgoingRequest


def self_signed(tmp_path, name: str = "localhost", *, for_ip: bool = True):
    """A certificate for ``name`` (and 127.0.0.1 if ``for_ip``), its own issuer: (cert
    file, key file)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(name)]
                + ([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))] if for_ip else [])
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def serving(cert_file, key_file) -> Receiver:
    """An HTTPS receiver that closes every connection after answering (so each delivery
    opens a new one)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    receiver = Receiver(tls=context)
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
