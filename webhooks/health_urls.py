"""Health URLs for load balancers and uptime monitors: ``path("health/webhooks/",
include("webhooks.health_urls"))``.

- ``<prefix>`` — this node: the database answers and the keys are usable. For a load
  balancer: a backlog or a silent sweeper is not this web server's fault, and taking every
  node out of rotation for it would take the whole site down.
- ``<prefix>platform/`` — the whole service, with ``webhooks_health``'s default thresholds:
  for an uptime monitor that pages someone.

200 when healthy, 503 otherwise (never 500: a database that is down is a 503).
Anyone gets ``{"status": ...}``; the problems and the platform-wide figures (aggregates
over every tenant) only a signed-in person who sees every tenant (``WEBHOOKS_SCOPE_RESOLVER``
answers "all scopes", as for the metrics URL): a tenant's staff learn nothing of the
others' volume.
Cheap: a handful of indexed queries, and the keys' sample decrypted at most once a
minute per process.
"""

from __future__ import annotations

import logging
import time

from django.db.transaction import non_atomic_requests
from django.http import JsonResponse
from django.urls import path
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from . import health, tenancy

logger = logging.getLogger("webhooks")

#: Seconds a process reuses its keys verdict (a sample of secrets is decrypted to make it).
KEYS_CACHE_SECONDS = 60.0
_keys: dict = {}


def _cached_keys_problem() -> str | None:
    now = time.monotonic()
    if "at" not in _keys or now - _keys["at"] > KEYS_CACHE_SECONDS:
        _keys["problem"], _keys["at"] = health.keys_problem(), now
    return _keys["problem"]


def _answer(request, check) -> JsonResponse:
    try:
        report = check(keys=_cached_keys_problem)
    except Exception:  # noqa: BLE001 - a health URL answers, whatever happens
        logger.exception("The health check failed.")
        report = health.Report(status=health.UNKNOWN)
    body = {"status": report.status}
    try:
        if tenancy.scope_for_user(getattr(request, "user", None)) is tenancy.ALL_SCOPES:
            body = report.as_dict()
    except Exception:  # noqa: BLE001 - the session or user tables unreadable: status only
        pass
    return JsonResponse(body, status=200 if report.status == health.OK else 503)


def _view(check):
    def view(request):
        return _answer(request, check)

    # No transaction around it (ATOMIC_REQUESTS would need the database before the view).
    return non_atomic_requests(never_cache(require_safe(view)))


app_name = "webhooks-health"
urlpatterns = [
    path("", _view(health.node), name="node"),
    path("platform/", _view(health.platform), name="platform"),
]
