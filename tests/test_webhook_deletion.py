"""Deleting a webhook deletes its delivery log a batch of ids at a time, never loading it:
Django's cascade read every delivery row into memory (a busy webhook's log, 328,000
deliveries, took 130 s and 580 MB in the deleting process: docs/benchmarks.md)."""

import re

import pytest
from django.db import connection
from django.db.models.signals import post_init
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.factories import DeliveryFactory, EventFactory, SubscriptionFactory
from webhooks import health_hours, removal
from webhooks.models import Delivery, DeliveryAttempt, HealthHour, Subscription

pytestmark = pytest.mark.django_db


@pytest.fixture
def deliveries_loaded():
    """How many Delivery objects were made from rows (or otherwise) meanwhile."""
    made = []

    def count(sender, instance, **kwargs):
        made.append(instance)

    post_init.connect(count, sender=Delivery)
    yield made
    post_init.disconnect(count, sender=Delivery)


def webhook_with_log(deliveries: int) -> Subscription:
    sub = SubscriptionFactory()
    made = [DeliveryFactory(subscription=sub, event=EventFactory()) for _ in range(deliveries)]
    now = timezone.now()
    attempts = [
        DeliveryAttempt(delivery=d, number=n, request_url=sub.url, succeeded=n == 2, created_at=now)
        for d in made
        for n in (1, 2)
    ]
    DeliveryAttempt.objects.bulk_create(attempts)
    for attempt in attempts:
        attempt.delivery = Delivery.objects.get(pk=attempt.delivery_id)
    health_hours.count(attempts)
    return sub


@pytest.mark.parametrize("how", ["the webhook", "a queryset"])
def test_a_webhooks_log_goes_with_it_in_batches_never_loaded(how, monkeypatch, deliveries_loaded):
    monkeypatch.setattr(removal, "BATCH", 4)
    doomed, kept = webhook_with_log(10), webhook_with_log(3)
    deliveries_loaded.clear()
    with CaptureQueriesContext(connection) as queries:
        if how == "the webhook":
            doomed.delete()
        else:
            Subscription.objects.filter(pk=doomed.pk).delete()
    assert not Subscription.objects.filter(pk=doomed.pk).exists()
    assert not Delivery.objects.filter(subscription=doomed.pk).exists()
    assert not DeliveryAttempt.objects.filter(delivery__subscription=doomed.pk).exists()
    assert not HealthHour.objects.filter(subscription=doomed.pk).exists()
    # the other webhook keeps its log and its figures
    assert Delivery.objects.filter(subscription=kept).count() == 3
    assert DeliveryAttempt.objects.filter(delivery__subscription=kept).count() == 6
    assert HealthHour.objects.get(subscription=kept).attempts == 6
    assert deliveries_loaded == []
    statements = [q["sql"] for q in queries.captured_queries]
    deletes = [sql for sql in statements if sql.upper().startswith("DELETE")]
    # three batches of deliveries (4, 4, 2), each with its attempts
    assert len([sql for sql in deletes if re.search(r"webhooks_deliveryattempt\W", sql)]) == 3


def test_the_admins_confirmation_counts_a_big_log_only_up_to_a_bound(admin_client, monkeypatch):
    monkeypatch.setattr("webhooks.admin.subscriptions.COUNT_AT_MOST", 5)
    busy, quiet = webhook_with_log(6), webhook_with_log(2)
    page = admin_client.get(f"/admin/webhooks/subscription/{busy.pk}/delete/").content.decode()
    assert "its delivery log: more than 5 deliveries, more than 5 attempts" in page
    page = admin_client.get(f"/admin/webhooks/subscription/{quiet.pk}/delete/").content.decode()
    assert "its delivery log: 2 deliveries, 4 attempts" in page
