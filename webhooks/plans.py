"""The host's plan gate: which customers (scopes) may use webhooks at all.

``WEBHOOKS_PLAN_GATE`` names a function ``(scope: str) -> bool``, e.g. "Pro organisations
only". Unset, every scope may. A refused scope's webhooks are kept but neither shown (the
portal, the admin and the API refuse its users) nor delivered to: the fan-out makes no
deliveries for them (the event is still recorded) and pending ones are held, as a disabled
webhook's are, until the gate allows the scope again.

The gate is asked about customers: the empty scope (no tenant — a single-tenant site, or
the platform's own webhooks, which only staff who see every tenant can make) is not one
and is always allowed. A gate that raises refuses (and the error is logged): webhooks
never break the host, and deny by default.

A gate may also answer for many scopes at once: a function given as its attribute
``many``, ``(scopes: set[str]) -> iterable of the allowed ones``. Lists of many
customers' webhooks (the superuser's admin list: 50 customers a page) then ask it once,
not once per customer.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.db import connection, transaction
from django.utils.module_loading import import_string

from .conf import conf

logger = logging.getLogger("webhooks")


def allows(scope: str) -> bool:
    return scope in allowed_scopes([scope])


def allowed_scopes(scopes: Iterable[str], *, in_savepoints: bool = False) -> set[str]:
    """The scopes of ``scopes`` the gate allows: one call of the gate per distinct scope,
    and at most one log line however many of them make it raise.

    ``in_savepoints``: each call in a savepoint when inside a PostgreSQL transaction (the
    fan-out's), so that a query of the gate that fails refuses instead of aborting the
    caller's whole transaction (two statements more per scope, so not on every request)."""
    scopes = {"" if s is None else str(s) for s in scopes}
    gate = conf.PLAN_GATE
    if not gate:
        return scopes
    allowed = {s for s in scopes if not s}
    failed = 0
    try:
        function = import_string(gate)
    except ImportError:
        logger.exception("WEBHOOKS_PLAN_GATE %r cannot be imported: every scope refused.", gate)
        return allowed
    asked = scopes - allowed
    many = getattr(function, "many", None)
    if callable(many) and asked:
        try:
            return allowed | (set(_ask(many, asked, in_savepoints, answer=set)) & asked)
        except Exception:  # noqa: BLE001 - a broken gate refuses, it never breaks the caller
            logger.exception(
                "WEBHOOKS_PLAN_GATE %r (its many) raised for %d scopes: refused.", gate, len(asked)
            )
            return allowed
    for scope in asked:
        try:
            if _ask(function, scope, in_savepoints):
                allowed.add(scope)
        except Exception:  # noqa: BLE001 - a broken gate refuses, it never breaks the caller
            failed += 1
            if failed == 1:
                logger.exception(
                    "WEBHOOKS_PLAN_GATE %r raised for scope %r: refused (and any other "
                    "scope it raises for here).",
                    gate,
                    scope,
                )
    return allowed


def _ask(function, scope, in_savepoint: bool, answer=bool):
    if in_savepoint and connection.vendor == "postgresql" and connection.in_atomic_block:
        with transaction.atomic():
            return answer(function(scope))
    return answer(function(scope))
