"""Who may use the Webhooks screen of Wagtail's admin, and whose webhooks it shows.

A Wagtail site is one site: its editors manage *the site's own* webhooks, those of the
empty scope, the scope of the events its pages, images and forms raise. So a user whom
``WEBHOOKS_SCOPE_RESOLVER`` lets see every tenant (``ALL_SCOPES``: superusers, and with
the default resolver everyone holding a permission of this app) gets the empty scope; a
host whose resolver ties a user to one customer shows that customer's webhooks; a user of
no scope gets nothing. Then, as in the customers' portal: ``view_subscription`` to look,
``change_subscription`` to change, and the plan gate (which always allows the empty scope).

Reaching Wagtail's admin at all (``wagtailadmin.access_admin``) is checked by Wagtail
itself, before this.
"""

from __future__ import annotations

from ... import plans
from ...portal.access import PortalAccess
from ...tenancy import ALL_SCOPES, NO_SCOPE, scope_for_user

#: The scope of a single site's own webhooks (and of events raised without a scope).
SITE_SCOPE = ""


def wagtail_access(request) -> PortalAccess | None:
    user = request.user
    scope = scope_for_user(user)
    if scope is NO_SCOPE:
        return None
    if scope is ALL_SCOPES:
        scope = SITE_SCOPE
    if not user.has_perm("webhooks.view_subscription") or not plans.allows(scope):
        return None
    return PortalAccess(
        scope=scope, can_change=user.has_perm("webhooks.change_subscription"), user=user
    )


def is_wagtail_administrator(user) -> bool:
    """Wagtail's "Administrator" role: ``is_superuser``, whatever ``is_staff`` says."""
    return bool(user and user.is_active and user.is_superuser)
