"""Who may open the portal, and for which customer (scope). Denies by default.

Two ways in:

* the host's own login: the user's scope from ``WEBHOOKS_SCOPE_RESOLVER``, and this app's
  permissions (``view_subscription`` to look, ``change_subscription`` to change);
* a magic link (``webhooks.portal.magic``): a session limited to one scope, for customers
  who are not Django users or a portal embedded in an iframe.

Either way the scope must pass the host's plan gate (``webhooks.plans``). A user who sees
every tenant (the platform's staff) has no single customer to show: they use the admin (or,
on a Wagtail site, ``webhooks.contrib.wagtail``, whose pages show the site's own webhooks).
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import plans
from ..tenancy import ALL_SCOPES, NO_SCOPE, scope_for_user

#: The session key holding a magic-link session (written by ``webhooks.portal.magic``).
SESSION_KEY = "webhooks_portal"


@dataclass(frozen=True)
class PortalAccess:
    scope: str
    can_change: bool
    #: The signed-in user, or None in a magic-link session (no Django user).
    user: object | None = None
    via_link: bool = False


def link_access(request) -> PortalAccess | None:
    """The magic-link session of this request, if a valid one is open."""
    from .magic import session_access  # the magic-link module owns its session format

    return session_access(request)


def portal_access(request) -> PortalAccess | None:
    """What this request may see in the portal, or None: nothing."""
    access = link_access(request)
    if access is None:
        access = user_access(request.user)
    if access is None or not plans.allows(access.scope):
        return None
    return access


def user_access(user) -> PortalAccess | None:
    scope = scope_for_user(user)
    if scope is NO_SCOPE or scope is ALL_SCOPES or not scope:
        return None
    if not user.has_perm("webhooks.view_subscription"):
        return None
    return PortalAccess(
        scope=scope, can_change=user.has_perm("webhooks.change_subscription"), user=user
    )
