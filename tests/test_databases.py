"""What differs between SQLite, PostgreSQL and MariaDB/MySQL and must not show: case in
tenant scopes, 4-byte characters, sub-second lease times. Runs on whichever the suite runs on."""

from datetime import timedelta

import pytest
from django.utils import timezone

import webhooks
from webhooks import outbox, tenancy
from webhooks.models import Delivery, Event, Subscription

pytestmark = pytest.mark.django_db


@pytest.mark.usefixtures("no_plan_gate")
def test_a_scope_differing_only_in_case_is_another_tenant(
    receiver, other_receiver, subscribe, commit, settings, django_user_model
):
    mine = subscribe(receiver, ["article.shared"], scope="acme")
    subscribe(other_receiver, ["article.shared"], scope="ACME")
    with commit():
        webhooks.send_event("article.shared", {"n": 1}, scope="acme")
    assert len(receiver.requests) == 1
    assert other_receiver.requests == []
    # What a tenant's staff may see (admin and API): their own webhooks, not ACME's.
    settings.WEBHOOKS_SCOPE_RESOLVER = "tests.test_databases.acme_for_everyone"
    user = django_user_model.objects.create_user("staff")
    assert list(tenancy.restrict(Subscription.objects.all(), user)) == [mine]


def acme_for_everyone(user):
    return "acme"


@pytest.mark.usefixtures("no_plan_gate")
def test_emoji_and_other_4_byte_characters_are_stored_and_sent_intact(receiver, subscribe, commit):
    subscribe(receiver, ["article.shared"], scope="t1")
    text = "launch 🚀 𝄞 漢字"
    with commit():
        event = webhooks.send_event("article.shared", {"title": text}, scope="t1")
    assert Event.objects.get(pk=event.pk).data == {"title": text}
    [request] = receiver.requests
    assert request.json()["data"]["title"] == text


@pytest.mark.usefixtures("no_plan_gate")
def test_a_lease_expires_to_the_microsecond(subscribe, receiver):
    subscribe(receiver, ["article.shared"], scope="t1")
    event = webhooks.send_event("article.shared", {"n": 1}, scope="t1")
    outbox.fan_out(event.pk)
    [delivery] = Delivery.objects.all()
    now = timezone.now().replace(microsecond=500_000)
    _, first = outbox.claim([delivery.pk], now=now, due_only=False)
    assert first == [delivery.pk]
    leased_until = Delivery.objects.get(pk=delivery.pk).leased_until
    assert leased_until.microsecond == 500_000  # kept, not rounded to the second
    # Still held a microsecond before it ends, free a microsecond after.
    _, early = outbox.claim(
        [delivery.pk], now=leased_until - timedelta(microseconds=1), due_only=False
    )
    assert early == []
    _, late = outbox.claim(
        [delivery.pk], now=leased_until + timedelta(microseconds=1), due_only=False
    )
    assert late == [delivery.pk]
