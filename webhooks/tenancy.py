"""Which tenant (scope) a user may see. The resolver is a setting: ``WEBHOOKS_SCOPE_RESOLVER``."""

from __future__ import annotations

from django.utils.module_loading import import_string

from .conf import conf

#: Returned by a resolver for a user who may see every tenant.
ALL_SCOPES = None


def default_scope_for_user(user) -> str | None:
    """Single-tenant default: superusers see everything, everyone else the unscoped webhooks."""
    return ALL_SCOPES if user.is_superuser else ""


def scope_for_user(user) -> str | None:
    return import_string(conf.SCOPE_RESOLVER)(user)


def restrict(queryset, user, scope_field: str = "scope"):
    """``queryset`` limited to what ``user`` may see."""
    if not user or not user.is_authenticated:
        return queryset.none()
    scope = scope_for_user(user)
    if scope is ALL_SCOPES:
        return queryset
    return queryset.filter(**{scope_field: scope})
