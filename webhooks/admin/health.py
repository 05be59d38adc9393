"""A webhook's health at a glance: its state and figures (``webhooks.stats``, the same as
the list's columns, the portal's and the API's), recent deliveries, deliveries per hour.

A constant number of queries whatever the number of deliveries: the recent ones (index
on subscription, -created_at), the figures, one of per-hour counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Count, Q
from django.utils import timezone

from .. import stats
from ..models import Delivery, Subscription
from .common import delivery_state

RECENT = 10
HOURS = 24
CHART_WIDTH, CHART_HEIGHT, BAR_GAP = 480, 90, 2


@dataclass
class Bar:
    hour: datetime
    succeeded: int = 0
    failed: int = 0
    pending: int = 0
    # Filled in by ``_layout``: SVG geometry.
    x: float = 0
    width: float = 0
    rects: list = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.succeeded + self.failed + self.pending


@dataclass
class Health:
    recent: list
    figures: stats.EndpointStats
    bars: list
    peak: int
    state: stats.WebhookState
    chart_width: int = CHART_WIDTH
    chart_height: int = CHART_HEIGHT

    @property
    def day_percent(self) -> str:
        return stats.percent_text(self.figures.success_rate_24h)

    @property
    def week_percent(self) -> str:
        return stats.percent_text(self.figures.success_rate_7d)


def health(subscription: Subscription, now: datetime | None = None) -> Health:
    now = now or timezone.now()
    deliveries = Delivery.objects.filter(subscription=subscription)
    recent = list(deliveries.select_related("event").order_by("-created_at")[:RECENT])
    for delivery in recent:
        delivery.subscription = subscription  # the states read it: no query per row
        delivery.state_css, delivery.state_words = delivery_state(delivery, now)

    first_hour = (now - timedelta(hours=HOURS - 1)).replace(minute=0, second=0, microsecond=0)
    hours = [first_hour + timedelta(hours=i) for i in range(HOURS)]
    bars = {hour: Bar(hour) for hour in hours}
    # One bucket count per hour, grouped by status: plain comparisons, which every
    # database evaluates natively (TruncHour is a Python function on SQLite). Counted by
    # ``subscription`` (never null), not by the primary key: ``webhooks_delivery_health``
    # holds it, so a busy webhook's day is read from that index alone (PostgreSQL, 10M
    # attempts: 190 ms reading 36,000 delivery rows → 12 ms).
    per_hour = (
        deliveries.filter(created_at__gte=first_hour)
        .values("status")
        .annotate(
            **{
                f"h{i}": Count(
                    "subscription",
                    filter=Q(created_at__gte=hour, created_at__lt=hour + timedelta(hours=1)),
                )
                for i, hour in enumerate(hours)
            }
        )
        .order_by()
    )
    for row in per_hour:
        for i, hour in enumerate(hours):
            bar = bars[hour]
            setattr(bar, row["status"], getattr(bar, row["status"]) + row[f"h{i}"])
    bar_list = list(bars.values())
    peak = max((b.total for b in bar_list), default=0)
    _layout(bar_list, peak)
    figures = stats.endpoint(subscription, now)
    return Health(
        recent=recent,
        figures=figures,
        bars=bar_list,
        peak=peak,
        state=stats.webhook_state(subscription, figures.last_attempt),
    )


def _layout(bars: list[Bar], peak: int) -> None:
    """Stacked bars (succeeded at the bottom, then failed, then pending), scaled to ``peak``."""
    width = CHART_WIDTH / len(bars)
    for index, bar in enumerate(bars):
        bar.x, bar.width = index * width, width - BAR_GAP
        y = CHART_HEIGHT
        for css, count in (("s", bar.succeeded), ("f", bar.failed), ("p", bar.pending)):
            if not count:
                continue
            height = max(1.0, CHART_HEIGHT * count / peak)
            y -= height
            bar.rects.append({"css": css, "y": round(y, 1), "height": round(height, 1)})
