"""Admin users of two tenants, a superuser, and a logged-in client for each."""

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from example_project.organisations.models import Membership, Organisation


@pytest.fixture
def acme(db):
    return Organisation.objects.create(name="Acme", slug="acme")


@pytest.fixture
def globex(db):
    return Organisation.objects.create(name="Globex", slug="globex")


def staff_of(org, username, perms):
    user = User.objects.create_user(username, password="pw", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="webhooks", codename__in=perms)
    )
    Membership.objects.create(user=user, organisation=org)
    return user


ALL_PERMS = [
    f"{action}_{model}"
    for action in ("view", "add", "change", "delete")
    for model in ("subscription", "delivery", "eventtype", "deliveryattempt")
]


@pytest.fixture
def superuser(db):
    return User.objects.create_superuser("root", "root@example.com", "pw")


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def admin_client(superuser):
    return client_for(superuser)


@pytest.fixture
def acme_staff(acme):
    return staff_of(acme, "alice", ALL_PERMS)


@pytest.fixture
def acme_client(acme_staff):
    return client_for(acme_staff)


@pytest.fixture
def viewer_client(acme):
    """Acme staff who may look but not change anything."""
    return client_for(
        staff_of(acme, "vic", ["view_subscription", "view_delivery", "view_eventtype"])
    )
