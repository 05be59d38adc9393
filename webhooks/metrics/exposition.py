"""What a scrape answers: the ``webhooks_*`` metrics in Prometheus's text format.

One process (``PROMETHEUS_MULTIPROC_DIR`` unset): this process's counters. Several
processes (set, the same directory for the web server and qcluster on a host): the sum
over every process's files in that directory, so a worker's attempts show up in the web
server's scrape. The backlog gauges come from the database in either case (``collector.py``).
"""

from __future__ import annotations

import os

from . import collector, counted_metrics

PREFIX = "webhooks_"


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class _OnlyWebhooks:
    """The ``webhooks_*`` families of other collectors (a multiprocess directory holds the
    host's metrics too)."""

    def __init__(self, sources) -> None:
        self.sources = sources

    def describe(self):
        return []

    def collect(self):
        for source in self.sources:
            for family in source.collect():
                if family.name.startswith(PREFIX):
                    yield family


def webhooks_registry():
    """A registry holding the webhooks metrics of this host and the backlog gauges."""
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    directory = multiprocess_dir()
    if directory:
        from prometheus_client.multiprocess import MultiProcessCollector

        counted = [MultiProcessCollector(None, path=directory)]
    else:
        counted = counted_metrics()
    registry.register(_OnlyWebhooks(counted))
    registry.register(collector.BacklogCollector())
    return registry


def render(accept: str | None = None) -> tuple[bytes, str]:
    """(body, content type) for a scrape, in the format its ``Accept`` header asks for."""
    from prometheus_client.exposition import choose_encoder

    encoder, content_type = choose_encoder(accept or "")
    return encoder(webhooks_registry()), content_type
