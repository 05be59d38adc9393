"""Who sees which webhooks. Two questions, answered separately:

* **may this user use webhooks at all** — Django's model permissions of this app
  (``view_subscription``, ``change_subscription``, ``view_event`` …), checked by the admin
  and, by default, by the API (``webhooks.api.permissions.WebhooksModelPermissions``);
* **whose webhooks** — the tenant (scope) a user is tied to, from the resolver named by
  ``WEBHOOKS_SCOPE_RESOLVER``.

The default resolver is for a single-tenant site and denies by default: superusers and
users holding a permission of this app see every webhook, everyone else sees nothing.
"""

from __future__ import annotations

from django.utils.module_loading import import_string

from .conf import conf

#: Returned by a resolver for a user who may see every tenant.
ALL_SCOPES = None


class _NoScope:
    def __repr__(self) -> str:
        return "NO_SCOPE"


#: Returned by a resolver for a user who may see no tenant at all.
NO_SCOPE = _NoScope()


def default_scope_for_user(user) -> str | None | _NoScope:
    """Single tenant: users with a permission of this app (and superusers) see everything."""
    if user.is_active and (user.is_superuser or user.has_module_perms("webhooks")):
        return ALL_SCOPES
    return NO_SCOPE


def scope_for_user(user) -> str | None | _NoScope:
    if not user or not user.is_authenticated:
        return NO_SCOPE
    return import_string(conf.SCOPE_RESOLVER)(user)


def restrict(queryset, user, scope_field: str = "scope"):
    """``queryset`` limited to what ``user`` may see."""
    return restrict_to(queryset, scope_for_user(user), scope_field)


def restrict_to(queryset, scope, scope_field: str = "scope"):
    """``queryset`` limited to ``scope`` as a resolver gave it."""
    if scope is ALL_SCOPES:
        return queryset
    if scope is NO_SCOPE:
        return queryset.none()
    return queryset.filter(**{scope_field: scope})
