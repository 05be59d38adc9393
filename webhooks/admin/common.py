"""What the admin classes share: the tenant of the request, JSON shown as text."""

from __future__ import annotations

import json
import uuid
from urllib.parse import urlsplit

from django.contrib import messages
from django.utils.html import format_html

from .. import plans, tenancy
from ..words import duration_words, plural  # noqa: F401 - used by the admin's modules
from .paging import BoundedPaginator

#: What staff of a customer outside the plan gate read in the admin.
PLAN_REFUSED = "Your organisation's plan does not include webhooks."


def request_scope(request) -> str | None:
    """The scope this request's user is tied to (None: every scope), resolved once.

    Staff of a customer the plan gate refuses are tied to nothing (``NO_SCOPE``): they see
    no webhook, event or delivery and cannot add one.
    """
    if not hasattr(request, "_webhooks_scope"):
        scope = tenancy.scope_for_user(request.user)
        request._webhooks_plan_refused = isinstance(scope, str) and not plans.allows(scope)
        request._webhooks_scope = tenancy.NO_SCOPE if request._webhooks_plan_refused else scope
    return request._webhooks_scope


def plan_refused(request) -> bool:
    request_scope(request)
    return request._webhooks_plan_refused


def sees_all(request) -> bool:
    return request_scope(request) is tenancy.ALL_SCOPES


def restrict(request, queryset, scope_field: str = "scope"):
    """``queryset`` limited to the request user's tenant (as ``tenancy.restrict``)."""
    return tenancy.restrict_to(queryset, request_scope(request), scope_field)


def pretty_json(value) -> str:
    if value in (None, "", {}, []):
        return "—"
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return format_html('<pre class="wh-pre">{}</pre>', value)
    return format_html(
        '<pre class="wh-pre">{}</pre>', json.dumps(value, indent=2, ensure_ascii=False)
    )


def url_parts(url) -> tuple[str, str, str, str]:
    """(host, ":port", the path's middle, its last segment with the query) of a URL.

    The lists cut the host's end and the path's middle, never the port or the path's
    last segment: ``…:8603/500`` and ``…:8699/refused`` stay apart.
    """
    text = str(url or "")
    try:
        netloc = urlsplit(text).netloc
    except ValueError:
        netloc = ""
    if not netloc or netloc not in text:  # not a URL: shown as it is, its end kept
        return "", "", "", text
    rest = text[text.index(netloc) + len(netloc) :]
    host, colon, port = netloc.rpartition(":")
    if not (colon and port.isdigit() and host):
        host, port = netloc, ""
    cut = rest.rstrip("/").rfind("/")
    middle, tail = (rest[:cut], rest[cut:]) if cut > 0 else ("", rest)
    return host, f":{port}" if port else "", middle, tail


def url_shown(url) -> str:
    """A URL on one line, cut where it says least (admin.css): the whole URL is its title
    and, for screen readers, its text."""
    host, port, middle, tail = url_parts(url)
    return format_html(
        '<span class="wh-url" title="{}"><span class="wh-url-full">{}</span>'
        '<span class="wh-url-shown" aria-hidden="true"><span class="wh-url-host">{}</span>'
        '<span class="wh-url-port">{}</span><span class="wh-url-path">{}</span>'
        '<span class="wh-url-tail">{}</span></span></span>',
        url,
        url,
        host,
        port,
        middle,
        tail,
    )


def as_uuid(text: str) -> uuid.UUID | None:
    text = text.strip()
    if text.startswith("msg_"):
        text = text[4:]
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def describe_attempt(delivery) -> tuple[bool, str]:
    """(succeeded, "HTTP 200 in 12 ms") for the last attempt of a delivery."""
    attempt = delivery.attempts.order_by("-number").first()
    if attempt is None:
        return False, "nothing was sent (the delivery is busy; try again in a moment)"
    return attempt.succeeded, attempt_summary(attempt)


def attempt_summary(attempt) -> str:
    """ "HTTP 200 in 12 ms", "Connection refused after 3 ms": plain words, each thing once."""
    if attempt.response_status_code:
        text = f"HTTP {attempt.response_status_code} in {attempt.duration_ms} ms"
    else:
        text = f"{error_words(attempt)} after {attempt.duration_ms} ms"
    detail = error_detail(attempt)
    return f"{text} — {detail}" if detail else text


def error_words(attempt) -> str:
    """The kind of error as a person says it ("Connection refused", not "connection_refused")."""
    if not attempt.error_kind:
        return "No answer"
    return str(attempt.get_error_kind_display())


#: Request headers whose values are never shown, whatever an attempt row holds: credentials,
#: and the signature (an HMAC made with the secret; the receiver has it, a reader needs not).
ALWAYS_REDACTED = frozenset({"authorization", "proxy-authorization", "cookie", "webhook-signature"})


def request_headers_shown(attempt, subscription) -> dict | None:
    """The request headers of ``attempt`` as a page may show them, or None if the row holds
    no readable object. Redacted again here, whoever wrote the row: the credential headers,
    the signature, and the webhook's secret headers (``Subscription.is_sensitive_header``)."""
    from ..delivery import REDACTED

    headers = attempt.request_headers
    if not isinstance(headers, dict):
        return None
    shown = {}
    for name, value in headers.items():
        lower = str(name).lower()
        if lower == "authorization" and str(value).startswith("Basic "):
            shown[name] = f"Basic {REDACTED}"
        elif lower in ALWAYS_REDACTED or subscription.is_sensitive_header(name):
            shown[name] = REDACTED
        else:
            shown[name] = value
    return shown


#: Kinds a status code says all of: "HTTP 500" needs no "HTTP 5xx from receiver" after it.
_SAID_BY_THE_CODE = {"", "http_4xx", "http_5xx"}


def error_detail(attempt) -> str:
    """What a failed attempt's record says beyond its status code, or beyond its kind when
    there was no answer; "" when nothing ("The receiver answered 500." after "HTTP 500")."""
    if attempt.succeeded:
        return ""
    from ..delivery import plain_message

    code = attempt.response_status_code
    message = (attempt.error_message or "").strip()
    if message and message != plain_message(attempt.error_kind, code):
        return message
    if code and attempt.error_kind not in _SAID_BY_THE_CODE:
        return error_words(attempt)  # "Redirect (not followed)"
    return ""


def request_body_of(attempt) -> str:
    """The body that was POSTed. The one place that reads it, so it can be rebuilt from the
    event instead of stored with every attempt without touching the pages."""
    return attempt.request_body


def delivery_state(delivery, now=None) -> tuple[str, str]:
    """(css class, words) of a delivery as a person reads it.

    ``delivery.subscription`` must be loaded (the lists select it).
    """
    status = delivery.status
    if status == "succeeded":
        if delivery.last_error:  # delivered once; a later manual resend failed
            return "succeeded", "Succeeded (a later resend failed)"
        return "succeeded", "Succeeded"
    if status == "failed":
        return "failed", "Failed"
    if not delivery.subscription.is_active:
        return "disabled", "Held: webhook disabled"
    if not delivery.attempt_count:
        return "pending", "Sending" if delivery.next_attempt_at is None else "Queued"
    if delivery.next_attempt_at is None:
        return "pending", "Sending"
    from django.utils import timezone

    now = now or timezone.now()
    next_at = timezone.localtime(delivery.next_attempt_at)
    when = (
        f"{next_at:%H:%M:%S}"
        if next_at.date() == timezone.localtime(now).date()
        else (f"{next_at:%Y-%m-%d %H:%M}")
    )
    return "retrying", f"Retrying (attempt {delivery.attempt_count} failed, next at {when})"


#: The states the delivery log filters by, in the words of ``delivery_state``.
STATE_CHOICES = [
    ("succeeded", "Succeeded"),
    ("retrying", "Retrying"),
    ("pending", "Queued (not tried yet)"),
    ("failed", "Failed"),
    ("held", "Held (webhook disabled)"),
]


def in_state(queryset, state: str, *, webhooks_active=None):
    """The deliveries of ``queryset`` in ``state`` (one of ``STATE_CHOICES``; else all).

    ``webhooks_active(flag)``: the condition keeping deliveries of enabled (``True``) or
    disabled webhooks; by default a join on the webhook. A caller that has the webhooks at
    hand passes their ids instead, which the database plans far better.
    """
    from django.db.models import Q

    from ..models import Delivery

    if webhooks_active is None:
        webhooks_active = lambda flag: Q(subscription__is_active=flag)  # noqa: E731
    pending = queryset.filter(status=Delivery.Status.PENDING)
    return {
        "succeeded": lambda: queryset.filter(status=Delivery.Status.SUCCEEDED),
        "failed": lambda: queryset.filter(status=Delivery.Status.FAILED),
        "retrying": lambda: pending.filter(webhooks_active(True), attempt_count__gt=0),
        "pending": lambda: pending.filter(webhooks_active(True), attempt_count=0),
        "held": lambda: pending.filter(webhooks_active(False)),
    }.get(state, lambda: queryset)()


#: Fields no admin URL may filter, search or order by, on any path (``subscription__secret``):
#: "does the secret start with whsec_X?" answered with 1 or 0 rows reveals it in ~1,500 tries.
SECRET_FIELDS = frozenset(
    {"secret", "previous_secret", "basic_auth_password", "password", "headers", "request_headers"}
)


def touches_a_secret(lookup: str) -> bool:
    return any(part in SECRET_FIELDS for part in lookup.split("__"))


class NoSecretLookupsMixin:
    """Refuse (400) a changelist URL filtering on a secret, whatever the user's rights."""

    def lookup_allowed(self, lookup, value, request=None):
        if touches_a_secret(lookup):
            return False
        return super().lookup_allowed(lookup, value, request)


class TenantAdminMixin(NoSecretLookupsMixin):
    """Staff tied to a tenant see and reach only that tenant's rows, counted only up to a
    bound (``paging``): the tables grow with every tenant's traffic."""

    scope_field = "scope"
    paginator = BoundedPaginator
    show_full_result_count = False  # the other count(*) of every list page

    def get_queryset(self, request):
        return restrict(request, super().get_queryset(request), self.scope_field)

    def has_module_permission(self, request):
        # Outside the plan: no "Webhooks" section in the admin's index at all.
        return not plan_refused(request) and super().has_module_permission(request)

    def has_add_permission(self, request, *args):
        if request_scope(request) is tenancy.NO_SCOPE:
            return False  # tied to no customer (or one outside the plan): nowhere to add to
        return super().has_add_permission(request, *args)

    def changelist_view(self, request, extra_context=None):
        if plan_refused(request):
            messages.info(request, PLAN_REFUSED)
        return super().changelist_view(request, extra_context)
