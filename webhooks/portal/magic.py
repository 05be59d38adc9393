"""Magic links: single-use, expiring, signed URLs opening a portal session for one scope.

For customers who are not users of the host's site, or a portal shown in an iframe on the
host's other site: the host's back end calls ``magic_link(scope)`` for the customer it has
signed in, and sends the browser (or the iframe) there.

* The link is signed (``django.core.signing``, with this module's salt: ``SECRET_KEY``
  rotation with ``SECRET_KEY_FALLBACKS`` works as for sessions) and carries the scope,
  ``can_change``, an expiry and a random nonce. A changed character is refused.
* Opening it records the nonce (``PortalLinkUse``, unique): a second opening is refused,
  even a concurrent one. Rows are purged once the link would have expired anyway.
* The session it starts holds only the portal's view of that one scope, for
  ``WEBHOOKS_PORTAL_SESSION_MAX_AGE`` seconds, bound to the browser's User-Agent by an
  HMAC. It is no Django login: the admin and the API see an anonymous visitor.
* Someone signed in to the site is always themselves: a link opened while signed in is
  refused (and not used up: sign out, or use a private window), and a link session is
  ignored once someone signs in. A link can so never add to, or mix with, what a user sees.
* The plan gate (``WEBHOOKS_PLAN_GATE``) is asked when the link is opened and on every page.
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

from django.core import signing
from django.db import IntegrityError, transaction
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import Resolver404, resolve, reverse
from django.utils.crypto import constant_time_compare, salted_hmac
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from .. import plans
from ..conf import conf
from ..models import PortalLinkUse
from .access import SESSION_KEY, PortalAccess
from .embedding import frame_policy

LINK_SALT = "webhooks.portal.magic-link"
SESSION_SALT = "webhooks.portal.link-session"
SCOPE_LENGTH = 100


def magic_link(
    scope: str,
    *,
    can_change: bool = True,
    max_age: float | None = None,
    next: str | None = None,  # noqa: A002 - the name a redirect target has in Django
    base_url: str | None = None,
) -> str:
    """A URL that opens the portal for ``scope`` once, within ``max_age`` seconds.

    ``can_change=False``: a look-only session. ``next``: a portal page to land on (only
    portal paths are accepted). ``base_url`` (``https://app.example.com``) makes the
    URL absolute; without it the URL is a path on this site.
    """
    scope = "" if scope is None else str(scope)
    if not scope or len(scope) > SCOPE_LENGTH:
        raise ValueError(
            f"A magic link needs the scope of one customer (1 to {SCOPE_LENGTH} characters)."
        )
    max_age = conf.PORTAL_LINK_MAX_AGE if max_age is None else float(max_age)
    if not max_age > 0:
        raise ValueError("max_age must be a number of seconds > 0.")
    if next and not is_portal_path(next):
        raise ValueError(f"next={next!r} is not a page of the portal (it starts {portal_root()}).")
    payload = {
        "s": scope,
        "c": bool(can_change),
        "n": secrets.token_urlsafe(18),
        "e": int(time.time() + max_age),
        "x": next or "",
    }
    token = signing.dumps(payload, salt=LINK_SALT, compress=True)
    path = reverse("webhooks_portal:magic", kwargs={"token": token})
    return f"{base_url.rstrip('/')}{path}" if base_url else path


def portal_root() -> str:
    return reverse("webhooks_portal:webhooks")


def is_portal_path(target) -> bool:
    """A path of this site's portal (never another site, nor the link page itself)."""
    if not isinstance(target, str) or not target.startswith("/") or "\\" in target:
        return False
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith(portal_root()):
        return False
    try:
        match = resolve(parts.path)
    except Resolver404:
        return False
    return match.namespace == "webhooks_portal" and match.url_name != "magic"


class SeeOther(HttpResponseRedirect):
    status_code = 303


def _read(token: str) -> dict | None:
    """The link's payload if its signature holds and its shape is ours; else None."""
    try:
        payload = signing.loads(token, salt=LINK_SALT)
    except (signing.BadSignature, ValueError):
        return None
    shape = {"s": str, "c": bool, "n": str, "e": int, "x": str}
    if not isinstance(payload, dict) or set(payload) != set(shape):
        return None
    if not all(isinstance(payload[key], kind) for key, kind in shape.items()):
        return None
    return payload


@never_cache
@require_GET  # not HEAD: a link checker asking for the headers does not use the link up
@frame_policy
def open_link(request, token: str):
    """Open a magic link: check it, use it up, start the session, go to the portal (303)."""
    link = _read(token)
    if link is None:
        return refused(request, "invalid")
    if link["e"] < time.time():
        return refused(request, "expired")
    if request.user.is_authenticated:
        return refused(request, "signed_in")  # not used up: usable once signed out
    if not plans.allows(link["s"]):
        return refused(request, "plan")
    expires_at = datetime.fromtimestamp(link["e"], tz=UTC)
    try:
        with transaction.atomic():  # a savepoint in ATOMIC_REQUESTS: the refusal renders
            PortalLinkUse.objects.create(nonce=link["n"][:64], expires_at=expires_at)
    except IntegrityError:
        return refused(request, "used")
    start_session(request, link["s"], link["c"], link["n"])
    target = link["x"] if is_portal_path(link["x"]) else portal_root()
    return SeeOther(target)


def start_session(request, scope: str, can_change: bool, nonce: str) -> None:
    # A new session key: whoever planted a session id in this browser does not share it.
    request.session.cycle_key()
    until = int(time.time() + conf.PORTAL_SESSION_MAX_AGE)
    data = {"scope": scope, "can_change": can_change, "until": until, "nonce": nonce}
    data["fingerprint"] = _fingerprint(request, data)
    request.session[SESSION_KEY] = data


def _fingerprint(request, data: dict) -> str:
    """Binds the session's grant to what it says and to this browser's User-Agent."""
    agent = request.META.get("HTTP_USER_AGENT", "")
    text = "\n".join(
        [str(data.get(k)) for k in ("scope", "can_change", "until", "nonce")] + [agent]
    )
    return salted_hmac(SESSION_SALT, text, algorithm="sha256").hexdigest()


def _session_data(request) -> dict | None:
    session = getattr(request, "session", None)
    data = session.get(SESSION_KEY) if session is not None else None
    return data if isinstance(data, dict) else None


def _valid(request, data: dict) -> bool:
    fingerprint = data.get("fingerprint")
    return (
        isinstance(fingerprint, str)
        and constant_time_compare(fingerprint, _fingerprint(request, data))
        and isinstance(data.get("scope"), str)
        and isinstance(data.get("until"), int)
        and data["until"] >= time.time()
    )


def session_access(request) -> PortalAccess | None:
    """The portal access of the request's magic-link session, or None."""
    data = _session_data(request)
    if data is None or request.user.is_authenticated or not _valid(request, data):
        return None
    return PortalAccess(
        scope=data["scope"], can_change=data.get("can_change") is True, user=None, via_link=True
    )


def session_refusal(request):
    """The page for a visitor whose link session has ended (or whose scope the plan gate
    now refuses), or None when this request has no link session to speak of."""
    data = _session_data(request)
    if data is None or request.user.is_authenticated:
        return None
    if not _valid(request, data):
        del request.session[SESSION_KEY]
        return refused(request, "ended")
    return refused(request, "plan")


#: What each refusal says: (status, heading, explanation). Nothing about the link's customer.
REFUSALS = {
    "invalid": (
        403,
        "This link is not valid",
        "It may have been cut short or changed when it was copied. Ask for a new link "
        "where you got this one.",
    ),
    "expired": (
        410,
        "This link has expired",
        "Links to the webhooks settings work for a few minutes after they are made. "
        "Ask for a new link where you got this one.",
    ),
    "used": (
        410,
        "This link has already been used",
        "Each link opens the webhooks settings once. Ask for a new link where you got this one.",
    ),
    "signed_in": (
        403,
        "You are signed in",
        "This link is for people who are not signed in to this site. Your own webhooks "
        "are in your settings; to use the link, sign out or open it in a private window.",
    ),
    "plan": (
        403,
        "Webhooks are not part of this plan",
        "The account this link is for has no webhooks in its plan.",
    ),
    "ended": (
        403,
        "Your session has ended",
        "A link opens the webhooks settings for a limited time. Ask for a new link where "
        "you got the first one.",
    ),
}


def refused(request, reason: str):
    status, heading, explanation = REFUSALS[reason]
    context = {
        "portal_base_template": conf.PORTAL_BASE_TEMPLATE,
        "heading": heading,
        "explanation": explanation,
        "reason": reason,
    }
    return render(request, "webhooks/portal/link_refused.html", context, status=status)
