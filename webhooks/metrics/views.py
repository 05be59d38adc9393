"""The metrics URL, denied by default.

A scrape is let in with ``Authorization: Bearer <WEBHOOKS_METRICS_TOKEN>`` (Prometheus's
``authorization`` / ``bearer_token_file``), or for a signed-in person who sees every tenant
(``WEBHOOKS_SCOPE_RESOLVER`` answers "all scopes": by default a superuser or a holder of
this app's permissions): the figures cover every tenant, so a tenant's own staff never
see them. With neither, the answer is 401 (403 for a signed-in person without the right).
"""

from __future__ import annotations

import hmac

from django.db import transaction
from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from .. import tenancy
from ..conf import conf
from . import INSTALL_HINT, available


def token_allows(authorization: str | None) -> bool:
    """Does an ``Authorization`` header carry the configured bearer token?"""
    token = conf.METRICS_TOKEN
    if not token or not isinstance(token, str) or not authorization:
        return False
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


def _user_allowed(request) -> bool:
    user = getattr(request, "user", None)
    return bool(user and user.is_authenticated) and (
        tenancy.scope_for_user(user) is tenancy.ALL_SCOPES
    )


def _text(body: str, status: int) -> HttpResponse:
    return HttpResponse(body + "\n", status=status, content_type="text/plain; charset=utf-8")


@never_cache
@require_GET
@transaction.non_atomic_requests
def metrics_view(request):
    if not (token_allows(request.headers.get("Authorization")) or _user_allowed(request)):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            return _text("Only a person who sees every tenant may read the metrics.", 403)
        response = _text(
            "Metrics need 'Authorization: Bearer <WEBHOOKS_METRICS_TOKEN>'"
            + ("." if conf.METRICS_TOKEN else " (no WEBHOOKS_METRICS_TOKEN is set)."),
            401,
        )
        response["WWW-Authenticate"] = 'Bearer realm="webhooks metrics"'
        return response
    if not available():
        return _text(INSTALL_HINT, 501)
    from .exposition import render

    body, content_type = render(request.headers.get("Accept"))
    return HttpResponse(body, content_type=content_type)
