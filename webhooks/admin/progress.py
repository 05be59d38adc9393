"""The outcome of work started in the background (a test event, a resend, a recovery).

The admin never sends while a request is open: the action is recorded and queued, the
page comes back at once with a box that says what is being done, and a small script
asks ``progress/`` every second until every manual attempt has landed. The figures come
from the attempt log, limited to the user's tenant (or the portal's customer: ``scope=``),
so any parameters are harmless.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Count, Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from .. import tenancy
from ..models import DeliveryAttempt
from .common import as_uuid, attempt_summary, plural, request_scope

SESSION_KEY = "webhooks:progress"

#: ``scope=`` not given: the figures of the request user's tenant (the admin's case).
USERS_SCOPE = object()


def sentence(text: str) -> str:
    """One full stop at the end, whether or not the receiver's words had one."""
    return text.rstrip(". ") + "."


def remember(request, *, label: str, since: datetime, expected: int, **target) -> None:
    """Show a progress box on the next page: ``expected`` manual attempts since ``since``,
    of one delivery (``delivery=``) or one webhook (``webhook=``) or of any (neither)."""
    request.session[SESSION_KEY] = {
        "label": label,
        "since": since.isoformat(),
        "expected": expected,
        **{k: str(v) for k, v in target.items() if v},
    }


def take(request, *, scope=USERS_SCOPE) -> dict | None:
    """The box to show on this page (once), with its figures as of now."""
    params = request.session.pop(SESSION_KEY, None)
    if not params:
        return None
    return {"params": params, **measure(request, params, scope=scope)}


def measure(request, params, *, scope=USERS_SCOPE) -> dict:
    """The figures of ``params``, counted only among the attempts ``scope`` may see (the
    request user's tenant unless given: the portal passes its one customer)."""
    if scope is USERS_SCOPE:
        scope = request_scope(request)
    try:
        since = parse_datetime(str(params.get("since", "")))
        expected = max(0, int(params.get("expected", 0)))
    except (TypeError, ValueError):
        since, expected = None, 0
    if since is None:
        since = timezone.now()
    attempts = tenancy.restrict_to(
        DeliveryAttempt.objects.filter(
            trigger=DeliveryAttempt.Trigger.MANUAL, created_at__gte=since
        ),
        scope,
        "delivery__subscription__scope",
    )
    for field, lookup in (("delivery", "delivery_id"), ("webhook", "delivery__subscription_id")):
        if params.get(field):
            found = as_uuid(str(params[field]))
            attempts = attempts.filter(**{lookup: found}) if found else attempts.none()
    counts = attempts.aggregate(
        ok=Count("pk", filter=Q(succeeded=True)),
        bad=Count("pk", filter=Q(succeeded=False)),
    )
    succeeded, failed = counts["ok"], counts["bad"]
    done = succeeded + failed >= expected
    label = str(params.get("label", "Sending"))
    if expected == 1:
        last = attempts.order_by("-created_at").first() if done else None
        if last is None:
            text, ok = f"{label}: sending…", None
        elif last.succeeded:
            text, ok = f"{label} delivered: {sentence(attempt_summary(last))}", True
        else:
            text, ok = f"{label} failed: {sentence(attempt_summary(last))}", False
    else:
        text = (
            f"{label}: {succeeded + failed} of {expected} sent — "
            f"{plural(succeeded, 'delivered', 'delivered')}, {failed} failed"
        )
        text += "." if done else "…"
        ok = None if not done else failed == 0
    return {"done": done, "ok": ok, "text": text, "succeeded": succeeded, "failed": failed}
