"""The customer's deliveries: the log, one delivery's attempts, resend, recover, progress.

Everything is read within ``self.access.scope``: another customer's delivery or webhook is
a 404 or a refused filter, never a row. Resend and recover only record requests and
enqueue them after the request's transaction commits (``webhooks.actions``); a worker
sends them, and the page follows the outcome (``webhooks.admin.progress``).
"""

from __future__ import annotations

import uuid
from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone

from .. import actions
from ..admin import progress
from ..admin.common import (
    delivery_state,
    error_words,
    plural,
    pretty_json,
    request_headers_shown,
)
from ..delivery import envelope
from ..exceptions import DeliveryBusy
from ..forms import RecoverForm
from ..models import Delivery, DeliveryAttempt, Subscription
from ..responses import safe_text
from .delivery_log import CustomerWebhooks, LogFilters, event_type_names, page_of
from .views import PortalView, portal_url

#: What a log row reads: never a payload, never a webhook's secrets.
ROW_FIELDS = (
    "id",
    "created_at",
    "status",
    "attempt_count",
    "next_attempt_at",
    "last_status_code",
    "last_error",
    "last_attempt_at",
    "subscription_id",
    "event_id",
    "event__type",
)
#: The encrypted columns of a webhook: a page about its deliveries needs none of them.
SECRET_COLUMNS = ("secret", "previous_secret", "basic_auth_password", "headers")
#: Most attempts shown on a delivery's page (newest first), and most characters of a body.
ATTEMPTS_SHOWN = 50
BODY_SHOWN = 64 * 1024
#: Most failed deliveries one "Resend failed" of the log queues (beyond: narrow the
#: filters, or recover a webhook since a time).
RESEND_AT_MOST = 1000
#: The parts of the log and detail pages brought up to date when background work lands.
LIVE_PARTS = "#whp-log,#whp-delivery-summary,#whp-attempts"


def log_url(request, query: dict | None = None) -> str:
    url = portal_url(request, "deliveries")
    return f"{url}?{urlencode(query)}" if query else url


class DeliveryLog(PortalView):
    """Newest first, a cursor page at a time; filtered by state, type, webhook, dates, id."""

    section = "deliveries"

    def get(self, request):
        chosen = request.GET.get("webhook", "")
        webhooks = CustomerWebhooks.of(self.access.scope, chosen)
        form = LogFilters(request.GET, webhooks=webhooks, event_types=event_type_names())
        page, status = None, 200
        if form.is_valid():
            deliveries = webhooks.deliveries().select_related("event").only(*ROW_FIELDS)
            page = page_of(
                form.apply(deliveries),
                after=form.cleaned_data["after"],
                before=form.cleaned_data["before"],
                webhooks=webhooks.to_reach(form.cleaned_data),
            )
            now = timezone.now()
            by_id = webhooks_of_rows(page.rows, webhooks.listed)
            for row in page.rows:
                row.subscription = by_id[row.subscription_id]
                row.state_css, row.state_words = delivery_state(row, now)
        else:
            status = 400
        recover_webhook = webhooks.chosen(chosen)
        return self.render(
            "webhooks/portal/deliveries.html",
            status=status,
            form=form,
            page=page,
            query=form.query(),
            query_string=urlencode(form.query()),
            has_webhooks=bool(webhooks.listed),
            recover_webhook=recover_webhook if form.is_valid() else None,
            progress=progress.take(request, scope=self.access.scope),
            live_parts=LIVE_PARTS,
        )


def webhooks_of_rows(rows, listed) -> dict:
    """{id: webhook} of a page's rows: those listed in the filter are loaded already; the
    others (a customer with more than ``WEBHOOKS_LISTED``) in one query, at most a page's."""
    by_id = {w.pk: w for w in listed}
    missing = {row.subscription_id for row in rows} - set(by_id)
    if missing:
        by_id.update(
            (w.pk, w)
            for w in Subscription.objects.filter(pk__in=missing).only(
                "id", "url", "description", "is_active", "scope"
            )
        )
    return by_id


class ResendDeliveries(PortalView):
    """The log's "Resend selected" and "Resend failed (these filters)"."""

    change_required = True
    section = "deliveries"

    def post(self, request):
        webhooks = CustomerWebhooks.of(self.access.scope, request.POST.get("webhook", ""))
        form = LogFilters(request.POST, webhooks=webhooks, event_types=event_type_names())
        back = HttpResponseRedirect(log_url(request, form.query()))
        mine = webhooks.deliveries()
        if request.POST.get("resend") == "failed":
            if not form.is_valid():
                messages.error(request, "Nothing was resent: correct the filters first.")
                return back
            failed = form.apply(mine).filter(status=Delivery.Status.FAILED)
            ids = list(failed.values_list("pk", flat=True)[: RESEND_AT_MOST + 1])
            if len(ids) > RESEND_AT_MOST:
                messages.error(
                    request,
                    f"Nothing was resent: more than {RESEND_AT_MOST:,} failed deliveries "
                    "match. Narrow the filters (a webhook, a date range), or recover a "
                    "webhook since a time.",
                )
                return back
            if not ids:
                messages.info(
                    request, "No failed deliveries match these filters: nothing to resend."
                )
                return back
        else:
            try:
                ids = {uuid.UUID(text) for text in request.POST.getlist("delivery")}
            except ValueError:
                messages.error(request, "Nothing was resent: the selection is not valid.")
                return back
            if not ids:
                messages.error(request, "Nothing was resent: select the deliveries to resend.")
                return back
            found = set(mine.filter(pk__in=ids).values_list("pk", flat=True))
            if found != ids:  # made up, deleted, or another customer's: none is touched
                messages.error(
                    request,
                    "Nothing was resent: some of the selected deliveries do not exist (any "
                    "more); reload the log and select again.",
                )
                return back
            ids = list(found)
        since = timezone.now()
        count = actions.resend(ids)
        messages.success(
            request, f"{plural(count, 'delivery is', 'deliveries are')} queued to be resent."
        )
        progress.remember(request, label="Resend", since=since, expected=count)
        return back


def outcome_words(attempt) -> tuple[str, str]:
    """("HTTP 500", "") or ("Connection refused", "[Errno 111] …"): what happened, then
    anything the stored message adds — never the same fact twice."""
    code = attempt.response_status_code
    headline = f"HTTP {code}" if code else error_words(attempt)
    if code and attempt.error_kind and not attempt.error_kind.startswith("http_"):
        headline += f", then {error_words(attempt).lower()}"  # e.g. a 200 that timed out
    detail = "" if attempt.succeeded else safe_text(attempt.error_message or "")
    if detail.rstrip(". ") in (f"The receiver answered {code}", headline):
        detail = ""
    return headline, detail


def body_shown(value) -> str:
    """A stored body as a page shows it: escaped, odd characters visible, at most
    ``BODY_SHOWN`` characters with a note of how much there was."""
    if value in (None, ""):
        return pretty_json(None)
    text = value if isinstance(value, str) else str(value)
    if len(text) > BODY_SHOWN:
        return pretty_json(
            safe_text(text[:BODY_SHOWN])
            + f"\n… (the first {BODY_SHOWN:,} of {len(text):,} characters)"
        )
    return pretty_json(safe_text(text))


def attempt_view(attempt, subscription, body_digest: str | None) -> dict:
    """What the page shows of one attempt. ``body_digest``: that of the body as rebuilt
    now (the same for every attempt of a delivery, so computed once)."""
    headline, detail = outcome_words(attempt)
    headers = request_headers_shown(attempt, subscription)
    sent = attempt.request_body_sha256
    return {
        "attempt": attempt,
        "headline": headline,
        "detail": detail,
        "request_headers": pretty_json(headers) if headers is not None else None,
        "body_differs": bool(sent) and sent != body_digest,
        "response_headers": body_shown(attempt.response_headers)
        if not isinstance(attempt.response_headers, dict)
        else pretty_json(attempt.response_headers),
        "response_body": body_shown(attempt.response_body),
    }


class DeliveryDetail(PortalView):
    """One delivery: its event, what was sent, and every attempt's request and response."""

    section = "deliveries"

    def get(self, request, pk):
        delivery = delivery_of(self.access.scope, pk)
        attempts = list(
            DeliveryAttempt.objects.filter(delivery=delivery).order_by("-number", "-pk")[
                :ATTEMPTS_SHOWN
            ]
        )
        total = len(attempts)
        if total == ATTEMPTS_SHOWN:
            total = DeliveryAttempt.objects.filter(delivery=delivery).count()
        try:
            sent = envelope(delivery)
        except (TypeError, ValueError):
            sent = None
        digest = DeliveryAttempt.digest(sent) if sent is not None else None
        css, words = delivery_state(delivery)
        return self.render(
            "webhooks/portal/delivery.html",
            delivery=delivery,
            state_css=css,
            state_words=words,
            body=body_shown(sent.decode()) if sent is not None else None,
            attempts=[attempt_view(a, delivery.subscription, digest) for a in attempts],
            attempts_total=total,
            progress=progress.take(request, scope=self.access.scope),
            live_parts=LIVE_PARTS,
        )


def delivery_of(scope: str, pk) -> Delivery:
    """The delivery ``pk`` if it is this customer's; a 404 otherwise (another's or none)."""
    delivery = (
        Delivery.objects.select_related("event", "subscription")
        .defer(*(f"subscription__{name}" for name in SECRET_COLUMNS))
        .filter(pk=pk, subscription__scope=scope)
        .first()
    )
    if delivery is None:
        raise Http404("No such delivery.")
    return delivery


class ResendDelivery(PortalView):
    change_required = True
    section = "deliveries"

    def post(self, request, pk):
        delivery = delivery_of(self.access.scope, pk)
        since = timezone.now()
        try:
            actions.resend_one(delivery)
        except DeliveryBusy as exc:
            messages.warning(request, str(exc))
        else:
            messages.success(request, "The delivery is queued to be resent.")
            progress.remember(
                request, label="Resend", since=since, expected=1, delivery=delivery.pk
            )
        return HttpResponseRedirect(self.url("delivery", delivery.pk))


class RecoverWebhook(PortalView):
    """Resend every failed delivery of one webhook since a time (Svix's "Recover")."""

    change_required = True
    section = "deliveries"

    def webhook(self, pk) -> Subscription:
        return get_object_or_404(
            Subscription.objects.only("id", "url", "scope", "is_active"),
            pk=pk,
            scope=self.access.scope,
        )

    def get(self, request, pk):
        webhook = self.webhook(pk)
        return self.render(
            "webhooks/portal/deliveries_recover.html", webhook=webhook, form=RecoverForm()
        )

    def post(self, request, pk):
        webhook = self.webhook(pk)
        form = RecoverForm(request.POST)
        if not form.is_valid():
            return self.render(
                "webhooks/portal/deliveries_recover.html", status=400, webhook=webhook, form=form
            )
        since = timezone.now()
        chosen = form.cleaned_data["since"]
        count = actions.recover(webhook, chosen)
        when = f"{timezone.localtime(chosen):%Y-%m-%d %H:%M}"
        if count:
            messages.success(
                request,
                f"{plural(count, 'failed delivery', 'failed deliveries')} since {when} "
                f"{'is' if count == 1 else 'are'} queued to be resent.",
            )
            progress.remember(
                request, label="Recover", since=since, expected=count, webhook=webhook.pk
            )
        else:
            messages.info(request, f"No delivery of this webhook has failed since {when}.")
        return HttpResponseRedirect(log_url(request, {"webhook": str(webhook.pk)}))


class Progress(PortalView):
    """JSON for the progress box, counted only among this customer's attempts."""

    section = "deliveries"

    def get(self, request):
        return JsonResponse(progress.measure(request, request.GET, scope=self.access.scope))
