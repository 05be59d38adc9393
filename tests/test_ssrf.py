"""Webhooks never reach the host's own network unless an allow-list says so."""

import ipaddress
import socket

import pytest
from django.core.exceptions import ValidationError

from tests.factories import SubscriptionFactory
from tests.testapp.models import Article
from webhooks.models import DeliveryAttempt
from webhooks.security import refusal_reason, validate_target_url

REFUSED = {
    "127.0.0.1": "loopback",
    "::1": "loopback",
    "10.1.2.3": "private",
    "172.16.0.1": "private",
    "192.168.1.1": "private",
    "169.254.169.254": "link-local",
    "fe80::1": "link-local",
    "100.64.0.1": "carrier-grade NAT",
    "224.0.0.1": "multicast",
    "ff02::1": "multicast",
    "240.0.0.1": "reserved",
    "0.0.0.0": "unspecified",
    "::ffff:127.0.0.1": "IPv4-mapped",
    "::ffff:8.8.8.8": "IPv4-mapped",
    "fc00::1": "private",
    "2002:7f00:1::": "tunnel",
}


@pytest.fixture(autouse=True)
def guard_on(settings):
    settings.WEBHOOKS_ALLOWED_NETWORKS = []


@pytest.mark.parametrize("address,reason", REFUSED.items())
def test_non_public_addresses_are_refused(address, reason):
    assert reason in refusal_reason(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(address):
    assert refusal_reason(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    "url,words",
    [
        ("ftp://example.com/x", "“ftp:” URLs are not accepted"),
        ("file:///etc/passwd", "“file:” URLs are not accepted"),
        ("https://user:pw@example.com/hook", "basic-auth fields"),
        ("http://127.0.0.1:8000/hook", "loopback"),
        ("http://[::1]/hook", "loopback"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://10.0.0.5/hook", "private"),
        ("http://[::ffff:10.0.0.5]/hook", "IPv4-mapped"),
        ("http://localhost/hook", "loopback"),
        ("http://no-such-host.invalid/hook", "could not be resolved"),
    ],
)
def test_refused_urls_explain_themselves(url, words):
    with pytest.raises(ValidationError) as info:
        validate_target_url(url)
    assert words in " ".join(info.value.messages)


@pytest.mark.django_db
def test_saving_a_subscription_to_a_private_target_is_a_field_error():
    subscription = SubscriptionFactory.build(url="http://192.168.0.10/hook")
    with pytest.raises(ValidationError) as info:
        subscription.full_clean()
    assert "private network address" in info.value.message_dict["url"][0]


def test_allow_list_lifts_the_guard_for_its_networks(settings):
    settings.WEBHOOKS_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    validate_target_url("http://127.0.0.1:9/hook")
    with pytest.raises(ValidationError):
        validate_target_url("http://10.0.0.1/hook")


@pytest.mark.django_db
def test_send_time_check_refuses_a_name_that_now_resolves_privately(
    receiver, subscribe, commit, monkeypatch, settings
):
    """DNS rebinding: the name was public when saved, resolves to loopback when sent."""
    sub = subscribe(receiver, ["article.created"])
    sub.url = f"http://rebind.example:{receiver.port}/hook"
    sub.save()
    real_getaddrinfo = socket.getaddrinfo

    def rebinding(host, *args, **kwargs):
        if host == "rebind.example":
            host = "127.0.0.1"
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    with commit():
        Article.objects.create(title="x")
    attempt = DeliveryAttempt.objects.get()
    assert attempt.error_kind == DeliveryAttempt.ErrorKind.BLOCKED_TARGET
    assert "loopback" in attempt.error_message
    assert receiver.requests == []
    # and with loopback allowed, the same name is delivered to
    settings.WEBHOOKS_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    from webhooks.actions import resend

    with commit():
        resend([attempt.delivery])
    assert len(receiver.requests) == 1


@pytest.mark.django_db
def test_proxy_environment_cannot_route_around_the_guard(receiver, subscribe, commit, monkeypatch):
    """HTTP(S)_PROXY pointing at an internal proxy is ignored."""
    monkeypatch.setenv("HTTP_PROXY", "http://10.0.0.1:3128")
    monkeypatch.setenv("http_proxy", "http://10.0.0.1:3128")
    monkeypatch.setattr(
        "webhooks.conf.Settings.ALLOWED_NETWORKS",
        property(lambda self: [ipaddress.ip_network("127.0.0.0/8")]),
    )
    subscribe(receiver, ["article.created"])
    with commit():
        Article.objects.create(title="x")
    assert len(receiver.requests) == 1
