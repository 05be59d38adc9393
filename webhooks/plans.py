"""The host's plan gate: which customers (scopes) may use webhooks at all.

``WEBHOOKS_PLAN_GATE`` names a function ``(scope: str) -> bool``, e.g. "Pro organisations
only". Unset, every scope may. A refused scope's webhooks are kept but neither shown in
the portal nor delivered to.
"""

from __future__ import annotations

from django.utils.module_loading import import_string

from .conf import conf


def allows(scope: str) -> bool:
    gate = conf.PLAN_GATE
    if not gate:
        return True
    return bool(import_string(gate)(scope))
