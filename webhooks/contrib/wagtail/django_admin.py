"""Wagtail's Administrators in the Django admin.

Wagtail's "Administrator" role makes a user a superuser but not staff (Wagtail does not
use ``is_staff``), so Django's admin would send them to its login page while the API, which
asks for permissions, gives them every right. With this app installed the Django admin
admits them as the superusers they are; everyone else still needs ``is_staff`` there.
``WEBHOOKS_WAGTAIL_ADMINS_IN_DJANGO_ADMIN = False`` keeps the Django admin to staff only.
"""

from __future__ import annotations

from ...conf import conf
from .access import is_wagtail_administrator


def admit_wagtail_administrators(site) -> None:
    """Widen ``site.has_permission`` (once, however often the app is made ready)."""
    staff_only = site.has_permission
    if getattr(staff_only, "admits_wagtail_administrators", False):
        return

    def has_permission(request) -> bool:
        if staff_only(request):
            return True
        return conf.WAGTAIL_ADMINS_IN_DJANGO_ADMIN and is_wagtail_administrator(request.user)

    has_permission.admits_wagtail_administrators = True
    site.has_permission = has_permission
