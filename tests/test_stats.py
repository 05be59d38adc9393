"""The operators' figures (webhooks.stats): one definition, read by metrics, health and pages."""

from datetime import timedelta

import pytest
from django.utils import timezone

from webhooks import stats
from webhooks.models import Delivery

from .factories import DeliveryFactory, EventFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


def test_backlog_counts_what_is_due_what_waits_and_how_old_it_is():
    now = timezone.now()
    webhook = SubscriptionFactory()
    for minutes in (1, 5, 30):  # due 1, 5 and 30 minutes ago
        DeliveryFactory(subscription=webhook, next_attempt_at=now - timedelta(minutes=minutes))
    DeliveryFactory(subscription=webhook, next_attempt_at=now + timedelta(minutes=2))  # a retry
    DeliveryFactory(  # finished: no longer owed
        subscription=webhook, status=Delivery.Status.SUCCEEDED, next_attempt_at=None
    )
    waiting = EventFactory(occurred_at=now - timedelta(seconds=40))
    EventFactory(fanned_out_at=now)
    SubscriptionFactory(is_active=False, disabled_reason="HTTP 410")

    figures = stats.backlog(now)

    assert figures.due == 3
    assert figures.oldest_due_age == pytest.approx(30 * 60)
    assert figures.retries_waiting == 1
    # The deliveries' own events were never marked fanned out by the factory: count them too.
    assert figures.events_waiting == 1 + 5
    assert figures.oldest_event_waiting_at <= waiting.occurred_at
    assert figures.webhooks_disabled == 1
    assert figures.as_dict()["oldest_due_age_seconds"] == pytest.approx(1800)


def test_nothing_owed_means_zero_ages():
    figures = stats.backlog()
    assert (figures.due, figures.oldest_due_age, figures.events_waiting) == (0, 0.0, 0)
    assert figures.oldest_event_waiting_age == 0.0
