"""Two tenants of the example platform, each with a webhook manager, a token and an API
client."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from example_project.demo.seed import webhook_managers
from example_project.organisations.models import Membership, Organisation
from tests.factories import SubscriptionFactory
from webhooks.models import Event

API = "/api/webhooks/"


@dataclass
class Tenant:
    organisation: Organisation
    user: object
    token: str
    client: APIClient

    @property
    def scope(self) -> str:
        return self.organisation.scope

    def subscription(self, receiver, events=(), **fields):
        fields.setdefault("all_events", not events)
        return SubscriptionFactory(
            url=receiver.url, scope=self.scope, owner=self.user, events=list(events), **fields
        )


def make_tenant(name: str) -> Tenant:
    organisation = Organisation.objects.create(name=name, slug=name.lower())
    user = get_user_model().objects.create_user(f"{name.lower()}-user", password="pw")
    user.groups.add(webhook_managers())  # the API, like the admin, needs the permissions
    Membership.objects.create(user=user, organisation=organisation)
    # A host may raise events of its own for the above (a member joined): start every
    # tenant with an empty history, so tests see only what they cause.
    Event.objects.filter(scope=organisation.scope).delete()
    token = Token.objects.create(user=user).key
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return Tenant(organisation, user, token, client)


@pytest.fixture
def tenant_a(db):
    return make_tenant("Acme")


@pytest.fixture
def tenant_b(db):
    return make_tenant("Globex")


@pytest.fixture
def superuser_client(db):
    admin = get_user_model().objects.create_superuser("root", password="pw")
    client = APIClient()
    client.force_authenticate(admin)
    return client
