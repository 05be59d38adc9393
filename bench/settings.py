"""Settings of the processes benchmarks and chaos tests start: the example project, plus
the test app's bound model (``Article``) and its unbound twin, tuned from the environment.

On SQLite the broker is the example project's: django-q2's ORM broker with
``webhooks.broker.OutboxBroker`` (the workers read new events from the Event table).
``BENCH_WEBHOOKS`` (JSON) overrides ``WEBHOOKS_*`` settings, ``BENCH_Q_CLUSTER`` (JSON)
overrides ``Q_CLUSTER`` keys; ``DATABASE_URL``, ``REDIS_URL``, ``Q_NAME`` and ``Q_WORKERS``
work as in the example project.
"""

import json
import os

from example_project.settings import *  # noqa: F403
from example_project.settings import INSTALLED_APPS, Q_CLUSTER

INSTALLED_APPS = [*INSTALLED_APPS, "tests.testapp"]

# Measure what production runs: with DEBUG, Django keeps and formats every query.
DEBUG = False

Q_CLUSTER = {
    **Q_CLUSTER,
    "log_level": "WARNING",
    **json.loads(os.environ.get("BENCH_Q_CLUSTER") or "{}"),
}

# Prometheus metrics (webhooks.metrics) are recorded when prometheus-client is installed;
# BENCH_METRICS=0 switches them off, to compare. With PROMETHEUS_MULTIPROC_DIR set as well,
# the processes pay what a multi-process deployment pays (counters in shared files).
WEBHOOKS_METRICS = os.environ.get("BENCH_METRICS", "1") not in ("0", "off", "false")

# OpenTelemetry: BENCH_TRACING=1 sets up the SDK as a host would, spans batched to an
# exporter that drops them (what recording and batching cost, without a collector).
if os.environ.get("BENCH_TRACING") == "1":
    from bench.tracing_sdk import set_up_tracing

    set_up_tracing()

for _name, _value in json.loads(os.environ.get("BENCH_WEBHOOKS") or "{}").items():
    globals()[f"WEBHOOKS_{_name}"] = _value

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "django_q": {"level": "WARNING", "propagate": True},
        # BENCH_LOG_LEVELS (JSON), e.g. {"webhooks.ratelimit": "INFO"}: what a benchmark counts.
        **{
            name: {"level": level, "propagate": True}
            for name, level in json.loads(os.environ.get("BENCH_LOG_LEVELS") or "{}").items()
        },
    },
}
