"""Schemathesis against the served schema: no 5xx, every answer as documented, no leaks.

Each operation gets a bounded number of generated requests (valid and invalid ones),
derandomised so a run is repeatable. A detail operation is also tried on an object the
caller owns and on one of another tenant (which must be a 404). Host names are never
looked up and nothing leaves the machine: the SSRF guard's resolver is replaced by one
that answers 127.0.0.1 for every name, and its connect by one that reaches only the
test receiver.
"""

from __future__ import annotations

import ipaddress
import uuid

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.conftest import make_tenant
from tests.factories import SubscriptionFactory
from webhooks import actions, security
from webhooks.models import Subscription

schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
PASSWORD = "fuzz-basic-auth-password"
OWN_ID = uuid.UUID("00000000-0000-4000-8000-00000000000a")
OTHER_ID = uuid.UUID("00000000-0000-4000-8000-00000000000b")


def resolve_without_dns(host: str, port: int, within: float | None = None):
    """Stands in for ``webhooks.security.resolve``: IP literals are themselves, any name is
    127.0.0.1 (allowed by the test settings), so fuzzed URLs pass or fail fast."""
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        return [ipaddress.ip_address("127.0.0.1")]


def connect_only_to(receiver):
    """Stands in for the guard's socket connect: the test receiver, and nothing else."""
    real = security.urllib3_connection.create_connection

    def create_connection(address, *args, **kwargs):
        if tuple(address) != ("127.0.0.1", receiver.port):
            raise ConnectionRefusedError(f"tests connect to the receiver only, not {address}")
        return real(address, *args, **kwargs)

    return create_connection


class World:
    """Tenant A (the caller) and tenant B, each with a webhook, a delivery and an event."""

    def __init__(self, receiver):
        self.receiver = receiver
        self.a, self.b = make_tenant("Acme"), make_tenant("Globex")
        self.own = self.objects(self.a, OWN_ID)
        self.other = self.objects(self.b, OTHER_ID)

    def objects(self, tenant, pk):
        sub = SubscriptionFactory(
            id=pk,
            url=self.receiver.url,
            scope=tenant.scope,
            owner=tenant.user,
            all_events=True,
            basic_auth_username="u",
            basic_auth_password=PASSWORD,
        )
        delivery = actions.send_test_event(sub)
        return {"subscriptions": sub, "deliveries": delivery, "events": delivery.event}

    def ensure(self):
        """Put back the caller's webhook if a fuzzed DELETE removed it."""
        sub = self.own["subscriptions"]
        if not Subscription.objects.filter(pk=sub.pk).exists():
            self.own = self.objects(self.a, OWN_ID)

    def secrets(self):
        subs = Subscription.objects.filter(pk__in=[OWN_ID, OTHER_ID])
        return {s for sub in subs for s in (sub.secret, sub.previous_secret) if s} | {PASSWORD}


@pytest.fixture
def world(db, receiver, monkeypatch):
    monkeypatch.setattr(security, "resolve", resolve_without_dns)
    monkeypatch.setattr(security.urllib3_connection, "create_connection", connect_only_to(receiver))
    # As Django's test client does: the WSGI app must not close the connection that holds
    # the test's transaction (PostgreSQL would lose it at the end of the first request).
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield World(receiver)
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def collection(path: str) -> str:
    return path.removeprefix("/api/webhooks/").split("/")[0]


@schema.parametrize()
@settings(
    max_examples=25,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_documented(case, world):
    world.ensure()
    headers = {"Authorization": f"Token {world.a.token}"}
    other_secret = world.other["subscriptions"].secret

    if isinstance(case.body, dict) and isinstance(case.body.get("scope"), str):
        # A tenant user may only name their own scope (tested elsewhere); let the rest through.
        case.body["scope"] = world.a.scope

    def call():
        response = case.call_and_validate(headers=headers, checks=CHECKS)
        rotated = case.path.endswith("rotate-secret/") and response.status_code == 200
        if not rotated:  # a rotation shows its new secret once, as it should
            for secret in world.secrets():
                assert secret not in response.text, f"a secret leaked: {case.path}"
        return response

    call()
    key = next(iter(case.path_parameters or {}), None)
    if key is None or case.method.upper() != case.operation.method.upper():
        return  # no object to aim at, or a probe with a method the path does not allow
    if key == "name":  # event types are shared by every tenant
        case.path_parameters = {key: "article.created"}
        call()
        return
    kind = collection(case.operation.path)
    case.path_parameters = {key: str(world.own[kind].pk)}
    call()
    case.path_parameters = {key: str(world.other[kind].pk)}
    assert call().status_code == 404, "another tenant's object must not be found"
    assert Subscription.objects.get(pk=OTHER_ID).secret == other_secret
