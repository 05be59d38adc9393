"""Owners hear when their webhook stops working: an e-mail, and an operational event the
tenant's other webhooks can subscribe to (``webhook.disabled``, ``webhook.failing``)."""

import pytest
from django.contrib.auth.models import User
from django.core import mail

import webhooks
from tests.receiver import Answer
from webhooks.models import Subscription

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner(db):
    return User.objects.create_user("olga", "olga@acme.example", "pw")


@pytest.fixture
def broken(subscribe, receiver, owner, acme):
    receiver.default = Answer(500, body="down")
    return subscribe(receiver, ["article.created"], owner=owner, scope=acme.scope)


@pytest.fixture
def watcher(subscribe, other_receiver, acme):
    """Another webhook of the same tenant, listening for notices about its webhooks."""
    return subscribe(other_receiver, ["webhook.disabled", "webhook.failing"], scope=acme.scope)


def test_a_disabled_webhook_emails_its_owner_and_tells_the_tenants_other_webhooks(
    broken, watcher, other_receiver, subscribe, globex, commit, settings
):
    from tests.receiver import Receiver

    settings.WEBHOOKS_RETRY_SCHEDULE = []
    settings.WEBHOOKS_DISABLE_AFTER = 0
    stranger = Receiver()
    try:
        subscribe(stranger, ["webhook.disabled"], scope=globex.scope)  # another tenant
        with commit():
            webhooks.send_event("article.created", {"id": 1}, scope=broken.scope)
        assert stranger.requests == []
    finally:
        stranger.stop()
    broken.refresh_from_db()
    assert not broken.is_active

    [message] = mail.outbox
    assert message.to == ["olga@acme.example"]
    assert message.subject == f"Your webhook was disabled: {broken}"
    assert broken.disabled_reason in message.body and broken.url in message.body

    assert other_receiver.types() == ["webhook.disabled"]
    data = other_receiver.requests[0].json()["data"]
    assert data["subscription_id"] == str(broken.pk)
    assert data["reason"] == broken.disabled_reason


def test_a_webhook_that_starts_failing_is_announced_once_per_run_of_failures(
    broken, watcher, other_receiver, commit, settings
):
    settings.WEBHOOKS_RETRY_SCHEDULE = []  # each delivery is given up at once
    settings.WEBHOOKS_DISABLE_AFTER = None
    for n in range(3):
        with commit():
            webhooks.send_event("article.created", {"id": n}, scope=broken.scope)
    assert Subscription.objects.get(pk=broken.pk).is_active
    assert other_receiver.types() == ["webhook.failing"]
    assert other_receiver.requests[0].json()["data"]["subscription_id"] == str(broken.pk)
    [message] = mail.outbox
    assert message.subject == f"Your webhook is failing: {broken}"


def test_owners_are_not_emailed_when_the_host_turns_it_off(
    broken, watcher, other_receiver, commit, settings
):
    settings.WEBHOOKS_NOTIFY_OWNERS = False
    settings.WEBHOOKS_RETRY_SCHEDULE = []
    settings.WEBHOOKS_DISABLE_AFTER = 0
    with commit():
        webhooks.send_event("article.created", {"id": 1}, scope=broken.scope)
    assert mail.outbox == []
    assert other_receiver.types() == ["webhook.disabled"]  # the event still goes out


def test_notices_go_only_to_webhooks_that_chose_them_not_to_all_events_ones(
    subscribe, receiver, other_receiver, owner, acme, commit, settings
):
    settings.WEBHOOKS_RETRY_SCHEDULE = []
    settings.WEBHOOKS_DISABLE_AFTER = None
    receiver.default = Answer(500, body="down")
    failing = subscribe(receiver, all_events=True, owner=owner, scope=acme.scope)
    also_all = subscribe(other_receiver, all_events=True, scope=acme.scope)
    with commit():
        webhooks.send_event("article.created", {"id": 1}, scope=acme.scope)
    assert Subscription.objects.get(pk=failing.pk).failing_since is not None
    [message] = mail.outbox  # the owner is told ...
    assert message.subject == f"Your webhook is failing: {failing}"
    # ... but "all events" means the platform's events: no notice to itself or its siblings.
    assert receiver.types() == ["article.created"]
    assert other_receiver.types() == ["article.created"]
    assert also_all.deliveries.count() == 1
