"""What every portal page shares: the access check, the host's base template, the nav."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.shortcuts import render
from django.urls import reverse
from django.views import View

from ..conf import conf
from . import magic
from .access import PortalAccess, portal_access
from .embedding import frame_policy


@dataclass(frozen=True)
class Surface:
    """Where the portal's pages are shown: who may see what, and in which layout.

    The customers' portal is the default; ``webhooks.contrib.wagtail`` shows the same pages
    in Wagtail's admin with a surface of its own (``webhooks.portal.urls.portal_patterns``).
    """

    #: ``access(request) -> PortalAccess | None``: the scope and rights of this request.
    access: Callable[..., PortalAccess | None] = portal_access
    #: The base template the pages extend; None: ``WEBHOOKS_PORTAL_BASE_TEMPLATE``.
    base_template: str | None = None
    #: A template included above every page (e.g. the host admin's page header).
    header_template: str | None = None
    #: False where the base template shows Django's messages itself (Wagtail's does).
    show_messages: bool = True

    @property
    def layout(self) -> str:
        return self.base_template or conf.PORTAL_BASE_TEMPLATE


CUSTOMERS = Surface()


def portal_url(request, name: str, *args) -> str:
    """The URL of portal page ``name`` on the surface ``request`` is on: a host may mount the
    portal twice (its customers' settings and Wagtail's admin), each with its own namespace."""
    match = getattr(request, "resolver_match", None)
    return reverse(
        f"webhooks_portal:{name}", args=args, current_app=match.namespace if match else None
    )


class PortalView(View):
    """A portal page: ``self.access`` is who is looking (one scope); everyone else is refused.

    Someone not signed in (and without a magic-link session) is sent to the host's login;
    a signed-in user with no customer, no permission or a customer outside the plan gets a
    403 page in the portal's layout. ``change_required`` pages also need ``can_change``.
    """

    change_required = False
    surface = CUSTOMERS
    #: Which nav entry is current: "webhooks", "deliveries" or "catalogue".
    section = "webhooks"

    def dispatch(self, request, *args, **kwargs):
        self.access = self.surface.access(request)
        if self.access is None:
            ended = magic.session_refusal(request)  # a magic-link session that is over
            if ended is not None:
                return ended
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path(), settings.LOGIN_URL)
            return self.refuse(request)
        if self.change_required and not self.access.can_change:
            return self.refuse(request)
        return super().dispatch(request, *args, **kwargs)

    @classmethod
    def as_view(cls, **initkwargs):
        # Every portal page, whatever it answers: who may show it in an iframe.
        return frame_policy(super().as_view(**initkwargs))

    def refuse(self, request):
        return render(request, "webhooks/portal/denied.html", self.portal_context(), status=403)

    def portal_context(self, **context) -> dict:
        context.setdefault("portal_base_template", self.surface.layout)
        context.setdefault("portal_header_template", self.surface.header_template)
        context.setdefault("portal_show_messages", self.surface.show_messages)
        context.setdefault("portal_section", self.section)
        context.setdefault("portal_access", getattr(self, "access", None))
        return context

    def url(self, name: str, *args) -> str:
        return portal_url(self.request, name, *args)

    def render(self, template: str, status: int = 200, **context):
        return render(self.request, template, self.portal_context(**context), status=status)


def denied(request, exception: PermissionDenied | None = None):
    return render(
        request,
        "webhooks/portal/denied.html",
        {"portal_base_template": conf.PORTAL_BASE_TEMPLATE},
        status=403,
    )
