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


def test_a_disabled_webhooks_deliveries_are_held_not_due():
    """A customer's receiver answering 410 switches its webhook off: what it still owes is
    held until someone enables it again, not late, or the backlog alert would page."""
    now = timezone.now()
    active, disabled = SubscriptionFactory(), SubscriptionFactory(is_active=False)
    DeliveryFactory(subscription=active, next_attempt_at=now - timedelta(minutes=1))
    for _ in range(2):
        DeliveryFactory(subscription=disabled, next_attempt_at=now - timedelta(hours=5))

    figures = stats.backlog(now)

    assert (figures.due, figures.held) == (1, 2)
    assert figures.oldest_due_age == pytest.approx(60)
    assert list(stats.worst_webhooks(5, now)) == [str(active.pk)]
