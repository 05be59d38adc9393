"""Who may show the portal in an iframe: ``WEBHOOKS_PORTAL_FRAME_ANCESTORS``.

Every portal response says so with ``Content-Security-Policy: frame-ancestors 'self' …``.
Without origins the portal may be framed by its own origin only (``X-Frame-Options:
SAMEORIGIN`` for browsers without CSP); with origins, ``X-Frame-Options`` (which cannot
name another origin) is left out and the CSP alone decides.

A cross-site iframe also needs the session (and CSRF) cookies sent to it from inside
another site: ``SESSION_COOKIE_SAMESITE = "None"`` with ``SESSION_COOKIE_SECURE = True``
(see docs/portal.md).
"""

from __future__ import annotations

import re
from functools import wraps

from ..conf import conf

#: ``scheme://host[:port]``, or a host pattern CSP accepts (``https://*.example.com``):
#: nothing that could end the directive or add another (no space, ``;``, ``,`` or quote).
ORIGIN = re.compile(r"^https?://(\*\.)?[A-Za-z0-9.-]+(:\d{1,5})?$")


def frame_origins() -> list[str]:
    """The configured origins that are well-formed origins (``webhooks.E022`` names the others)."""
    origins = conf.PORTAL_FRAME_ANCESTORS or ()
    if isinstance(origins, str):
        origins = origins.split()
    return [str(o).rstrip("/") for o in origins if ORIGIN.match(str(o).rstrip("/"))]


def bad_frame_origins() -> list[str]:
    origins = conf.PORTAL_FRAME_ANCESTORS or ()
    if isinstance(origins, str):
        origins = origins.split()
    return [str(o) for o in origins if not ORIGIN.match(str(o).rstrip("/"))]


def apply_frame_policy(response):
    origins = frame_origins()
    response["Content-Security-Policy"] = " ".join(["frame-ancestors", "'self'", *origins])
    if origins:
        response.xframe_options_exempt = True  # XFrameOptionsMiddleware: leave it out
        if "X-Frame-Options" in response:
            del response["X-Frame-Options"]
    else:
        response["X-Frame-Options"] = "SAMEORIGIN"
    return response


def frame_policy(view):
    """A view decorator: the portal's framing headers on every response of ``view``."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        return apply_frame_policy(view(request, *args, **kwargs))

    return wrapped
