"""The figures read from the database when Prometheus scrapes: the backlog as
``webhooks.stats.backlog()`` defines it, and the webhooks with the worst due backlog.

They are computed by the process that answers the scrape, never stored per process, so
several web or worker processes do not multiply them. Each scrape costs the queries of
``backlog()`` plus two grouped queries over the due deliveries (the ``webhooks_delivery_due``
index), whatever the number of processes.

Per-webhook series: only the ``WEBHOOKS_METRICS_TOP_WEBHOOKS`` webhooks with the most due
deliveries and the ``WEBHOOKS_METRICS_TOP_WEBHOOKS`` with the oldest due delivery (at most
twice that many series per metric), labelled by webhook id: never by URL, which may carry
credentials or a tenant's name.
"""

from __future__ import annotations

import logging

from .. import stats
from ..conf import conf

logger = logging.getLogger("webhooks")

#: Every name this collector yields (the docs' metric list and the rules' tests use it).
NAMES = (
    "webhooks_backlog_up",
    "webhooks_deliveries_due",
    "webhooks_oldest_due_age_seconds",
    "webhooks_retries_waiting",
    "webhooks_events_waiting_fanout",
    "webhooks_oldest_event_waiting_age_seconds",
    "webhooks_webhooks_disabled",
    "webhooks_deliveries_held",
    "webhooks_webhook_deliveries_due",
    "webhooks_webhook_oldest_due_age_seconds",
)


class BacklogCollector:
    """A prometheus_client custom collector: the backlog gauges, read at scrape time."""

    def describe(self):
        return []  # registering must not query the database (it may run before migrate)

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        up = GaugeMetricFamily(
            "webhooks_backlog_up",
            "1 if this scrape could read the backlog figures from the database, else 0.",
        )
        try:
            backlog = stats.backlog()
            worst = stats.worst_webhooks(conf.METRICS_TOP_WEBHOOKS, backlog.at)
        except Exception:  # noqa: BLE001 - a scrape must answer, with the figure that says why
            logger.warning("Could not read the webhooks backlog for metrics.", exc_info=True)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        for name, text, value in (
            (
                "webhooks_deliveries_due",
                "Pending deliveries whose next attempt time has come (the due backlog).",
                backlog.due,
            ),
            (
                "webhooks_oldest_due_age_seconds",
                "Seconds since the oldest due delivery became due (0 when none is due).",
                backlog.oldest_due_age,
            ),
            (
                "webhooks_retries_waiting",
                "Pending deliveries whose next attempt is in the future.",
                backlog.retries_waiting,
            ),
            (
                "webhooks_events_waiting_fanout",
                "Events committed but not yet turned into deliveries.",
                backlog.events_waiting,
            ),
            (
                "webhooks_oldest_event_waiting_age_seconds",
                "Seconds since the oldest event waiting for fan-out occurred.",
                backlog.oldest_event_waiting_age,
            ),
            (
                "webhooks_deliveries_held",
                "Pending deliveries of disabled webhooks (sent once they are enabled again).",
                backlog.held,
            ),
            (
                "webhooks_webhooks_disabled",
                "Webhooks switched off (by a 410, by failing too long, or by a person).",
                backlog.webhooks_disabled,
            ),
        ):
            yield GaugeMetricFamily(name, text, value=value)
        due = GaugeMetricFamily(
            "webhooks_webhook_deliveries_due",
            "Due deliveries of one webhook; only the worst WEBHOOKS_METRICS_TOP_WEBHOOKS.",
            labels=["webhook"],
        )
        age = GaugeMetricFamily(
            "webhooks_webhook_oldest_due_age_seconds",
            "Age of one webhook's oldest due delivery; only the worst "
            "WEBHOOKS_METRICS_TOP_WEBHOOKS.",
            labels=["webhook"],
        )
        for webhook, (count, seconds) in worst.items():
            due.add_metric([webhook], count)
            age.add_metric([webhook], seconds)
        yield due
        yield age
