"""The operators' figures, defined once: the metrics, ``webhooks_health``, the admin and the
API all read them from here, so a number means the same thing wherever it is shown.

Definitions:

- **due backlog**: deliveries still pending whose next attempt time has come (whether or
  not a worker holds them right now). It grows when workers cannot keep up or are down.
- **oldest due**: the earliest ``next_attempt_at`` among them; its age is how late the
  platform is on its promises (the alerting figure: a backlog that is old, not large).
- **retries waiting**: pending deliveries whose next attempt is in the future.
- **events waiting for fan-out**: events committed but not yet turned into deliveries.
- **webhooks disabled**: webhooks switched off, by a receiver's 410, by failing too long,
  or by a person.

Every query here reads an index (``webhooks_delivery_due``, the partial
``webhooks_event_pending_fanout``, the subscription table), whatever the size of the
attempts table.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from django.db.models import Count, Min, Q
from django.utils import timezone

from .models import Delivery, Event, Subscription


@dataclass(frozen=True)
class Backlog:
    at: datetime
    due: int
    oldest_due_at: datetime | None
    retries_waiting: int
    events_waiting: int
    oldest_event_waiting_at: datetime | None
    webhooks_disabled: int

    @property
    def oldest_due_age(self) -> float:
        """Seconds since the oldest due delivery became due (0 when nothing is due)."""
        return _age(self.at, self.oldest_due_at)

    @property
    def oldest_event_waiting_age(self) -> float:
        return _age(self.at, self.oldest_event_waiting_at)

    def as_dict(self) -> dict:
        figures = asdict(self)
        figures["oldest_due_age_seconds"] = round(self.oldest_due_age, 3)
        figures["oldest_event_waiting_age_seconds"] = round(self.oldest_event_waiting_age, 3)
        return figures


def _age(now: datetime, since: datetime | None) -> float:
    return max(0.0, (now - since).total_seconds()) if since else 0.0


def backlog(now: datetime | None = None) -> Backlog:
    """The platform-wide backlog figures, in three queries."""
    now = now or timezone.now()
    pending = Delivery.objects.filter(status=Delivery.Status.PENDING)
    deliveries = pending.aggregate(
        due=Count("pk", filter=Q(next_attempt_at__lte=now)),
        oldest=Min("next_attempt_at", filter=Q(next_attempt_at__lte=now)),
        waiting=Count("pk", filter=Q(next_attempt_at__gt=now)),
    )
    events = Event.objects.filter(fanned_out_at__isnull=True).aggregate(
        waiting=Count("pk"), oldest=Min("occurred_at")
    )
    return Backlog(
        at=now,
        due=deliveries["due"],
        oldest_due_at=deliveries["oldest"],
        retries_waiting=deliveries["waiting"],
        events_waiting=events["waiting"],
        oldest_event_waiting_at=events["oldest"],
        webhooks_disabled=Subscription.objects.filter(is_active=False).count(),
    )
