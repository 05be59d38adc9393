"""The delivery log: every event owed to a webhook, and every attempt to send it. Read-only."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.db.models import Q
from django.db.models.functions import Lower
from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from .. import actions, url_search
from ..exceptions import DeliveryBusy
from ..models import Delivery, DeliveryAttempt, EventType, Subscription
from . import progress
from .common import (
    STATE_CHOICES,
    TenantAdminMixin,
    as_uuid,
    delivery_state,
    error_detail,
    error_words,
    in_state,
    plural,
    pretty_json,
    request_body_of,
    restrict,
    url_shown,
)


def short_time(moment) -> str:
    """``2026-11-23 01:07:12``: narrow enough for a column beside the filters."""
    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M:%S}"


def status_badge(status: str, label: str) -> str:
    return format_html('<span class="wh-status wh-status-{}">{}</span>', status, label)


class EventTypeFilter(admin.SimpleListFilter):
    title = "event type"
    parameter_name = "event_type"

    def lookups(self, request, model_admin):
        # From the (small) EventType table, not a DISTINCT over every event.
        return [(name, name) for name in EventType.objects.values_list("name", flat=True)]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(event__type=self.value())
        return queryset


class ResponseFilter(admin.SimpleListFilter):
    """The class of the last answer: 2xx … 5xx, or none at all (timeout, refused, …)."""

    title = "last response"
    parameter_name = "response"

    def lookups(self, request, model_admin):
        return [
            ("2xx", "2xx success"),
            ("3xx", "3xx redirect"),
            ("4xx", "4xx client error"),
            ("5xx", "5xx server error"),
            ("none", "No response"),
        ]

    def queryset(self, request, queryset):
        value = self.value() or ""
        if value == "none":
            return queryset.filter(last_status_code__isnull=True, attempt_count__gt=0)
        if len(value) == 3 and value[0] in "2345" and value.endswith("xx"):
            low = int(value[0]) * 100
            return queryset.filter(last_status_code__gte=low, last_status_code__lt=low + 100)
        return queryset


class StateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return STATE_CHOICES

    def queryset(self, request, queryset):
        return in_state(queryset, self.value())


#: Webhooks listed in the delivery log's "webhook" filter at most: a platform's 100,000
#: would be seconds of HTML on every page of the log. The others are reached from their
#: own page ("Deliveries" link) or by searching the log for their id.
WEBHOOKS_LISTED = 50


#: Webhooks a search of the log by URL names by their ids at most (past it, a subquery).
SEARCHED_WEBHOOKS = 20_000

#: The same where the URLs have their trigram index (``webhooks.url_search``): PostgreSQL
#: then knows how many webhooks match, and a subquery is planned well; a list of thousands
#: of ids costs more to send and plan (~250 ms for 10,000) than it saves.
SEARCHED_WEBHOOKS_INDEXED = 200


class WebhookFilter(admin.SimpleListFilter):
    title = "webhook"
    parameter_name = "webhook"

    def lookups(self, request, model_admin):
        webhooks = restrict(request, Subscription.objects.only("pk", "description", "url"))
        # The first by id (an index), sorted by name here: not a sort of every webhook.
        listed = sorted(
            webhooks.order_by("pk")[:WEBHOOKS_LISTED], key=lambda sub: (sub.description, sub.url)
        )
        chosen = as_uuid(self.value() or "")
        if chosen and all(sub.pk != chosen for sub in listed):
            listed += webhooks.filter(pk=chosen)  # the one filtered on stays shown, selected
        return [(str(sub.pk), str(sub)) for sub in listed]

    def queryset(self, request, queryset):
        if self.value():
            found = as_uuid(self.value())
            return queryset.filter(subscription_id=found) if found else queryset.none()
        return queryset


class DeliveryAttemptInline(admin.StackedInline):
    """Each attempt: what was sent beside what came back."""

    model = DeliveryAttempt
    extra = 0
    can_delete = False
    verbose_name = "attempt"
    fields = ["outcome", "exchange"]
    readonly_fields = fields

    def get_queryset(self, request):
        # The request body is rebuilt from the event: fetch it with the attempts.
        return super().get_queryset(request).select_related("delivery__event")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Outcome")
    def outcome(self, attempt):
        # The attempt's heading says "#1 HTTP 500" (or "#1 Connection refused") and the
        # response side its duration: here only what neither says.
        code = attempt.response_status_code
        verdict = "Succeeded" if attempt.succeeded else "Failed"
        detail = error_detail(attempt)
        if code and detail == error_words(attempt):  # "Redirect (not followed)"
            verdict = f"{verdict}: {detail}"
        return format_html(
            '<span class="wh-status {}">{}</span> <span class="wh-muted">· {} · {}</span>',
            "wh-good" if attempt.succeeded else "wh-bad",
            verdict,
            attempt.get_trigger_display(),
            short_time(attempt.created_at),
        )

    @admin.display(description="Request and response")
    def exchange(self, attempt):
        return render_to_string(
            "admin/webhooks/delivery/exchange.html",
            {
                "attempt": attempt,
                "request_headers": pretty_json(attempt.request_headers),
                "request_body": pretty_json(request_body_of(attempt)),
                "body_differs": attempt.request_body_verified is False,
                "response_headers": pretty_json(attempt.response_headers),
                "response_body": pretty_json(attempt.response_body),
                "error": "" if attempt.response_status_code else error_words(attempt),
                "detail": error_detail(attempt),
            },
        )


@admin.register(Delivery)
class DeliveryAdmin(TenantAdminMixin, admin.ModelAdmin):
    scope_field = "subscription__scope"
    list_display = [
        "event_type",
        "webhook",
        "status_shown",
        "created",
    ]
    list_display_links = ["event_type"]
    list_select_related = ["event", "subscription"]
    list_filter = [StateFilter, ResponseFilter, EventTypeFilter, WebhookFilter, "created_at"]
    empty_value_display = "—"
    search_fields = ["subscription__url"]
    search_help_text = "An event id, a webhook id (msg_…), a webhook's id, or part of its URL."
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # a count per filter choice is a scan per choice
    list_per_page = 50
    actions = ["resend_selected"]
    inlines = [DeliveryAttemptInline]
    fields = [
        "event_type",
        "event_id",
        "webhook",
        "webhook_id_header",
        "status_shown",
        "attempt_count",
        "last_status_code",
        "last_error",
        "last_attempt_at",
        "created_at",
        "payload",
    ]
    readonly_fields = fields

    class Media:
        css = {"all": ["webhooks/admin.css"]}

    # Read-only: the log is what happened. Resending is the one thing one can do.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_resend_permission(self, request, obj=None) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.change_{self.opts.model_name}")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("event", "subscription")

    # -- columns and fields ---------------------------------------------------------------

    @admin.display(description="Event type", ordering="event__type")
    def event_type(self, obj):
        return format_html('<span class="wh-cut" title="{0}">{0}</span>', obj.event.type)

    @admin.display(description="Event id")
    def event_id(self, obj):
        return str(obj.event_id)

    @admin.display(description="Webhook", ordering="subscription")
    def webhook(self, obj):
        link = reverse("admin:webhooks_subscription_change", args=[obj.subscription_id])
        url = obj.subscription.url
        if not obj.subscription.description:
            return format_html('<a href="{}">{}</a>', link, url_shown(url))
        return format_html(
            '<a class="wh-cut" href="{}">{}</a><span class="wh-muted wh-small">{}</span>',
            link,
            obj.subscription.description,
            url_shown(url),
        )

    @admin.display(description="webhook-id header")
    def webhook_id_header(self, obj):
        return obj.webhook_id

    @admin.display(description="State", ordering="status")
    def status_shown(self, obj):
        css, words = delivery_state(obj)
        if not obj.last_status_code:
            return status_badge(css, words)
        return format_html(
            '{} <span class="wh-muted">HTTP {}</span>',
            status_badge(css, words),
            obj.last_status_code,
        )

    @admin.display(description="Last code", ordering="last_status_code")
    def code(self, obj):
        return obj.last_status_code or "—"

    @admin.display(description="Created", ordering="created_at")
    def created(self, obj):
        moment = timezone.localtime(obj.created_at)
        if moment.date() == timezone.localdate():
            return f"{moment:%H:%M:%S}"
        return f"{moment:%d %b %Y %H:%M}"

    @admin.display(description="Payload")
    def payload(self, obj):
        return pretty_json(obj.event.data)

    # -- search ---------------------------------------------------------------------------

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        found = as_uuid(term)
        if found is not None:
            by_id = Q(event_id=found) | Q(subscription_id=found) | Q(pk=found)
            return queryset.filter(by_id), False
        # The matching webhooks' ids first, then their deliveries: the database then knows
        # how many webhooks match. Joined on ``url LIKE``, it guesses a handful, and reads
        # and sorts every delivery of the 10,000 that match before taking 50: 11 s at 1M
        # attempts, 8 ms with their ids (newest first through ``created_at``).
        # Lower-cased on both sides rather than ``icontains``: MariaDB's columns here compare
        # bytes (``utf8mb4_bin``), where ``icontains`` would be case-sensitive.
        # A few matching webhooks are named by id all the same: the busy one among them is
        # then read through its own statistics (by ``created_at``, not sorting its log).
        urls = Subscription.objects.annotate(url_lower=Lower("url"))
        matching = restrict(request, urls.filter(url_lower__contains=term.lower()).order_by())
        named = SEARCHED_WEBHOOKS_INDEXED if url_search.indexed(connection) else SEARCHED_WEBHOOKS
        ids = list(matching.values_list("pk", flat=True)[: named + 1])
        if len(ids) > named:  # a statement of bounded size, however many match
            return queryset.filter(subscription__in=matching.values("pk")), False
        return queryset.filter(subscription_id__in=ids), False

    # -- resending ------------------------------------------------------------------------

    @admin.action(description="Resend selected deliveries", permissions=["resend"])
    def resend_selected(self, request, queryset):
        since = timezone.now()
        count = actions.resend(list(queryset.values_list("pk", flat=True)))
        busy = queryset.count() - count
        if not count:
            messages.warning(
                request,
                "Nothing was resent: the selected deliveries are being sent right now; "
                "try again in a moment.",
            )
            return
        text = f"{plural(count, 'delivery is', 'deliveries are')} queued to be resent."
        if busy:
            text += f" {plural(busy, 'other was', 'others were')} being sent already."
        messages.success(request, text)
        progress.remember(request, label="Resend", since=since, expected=count)

    def get_urls(self):
        name = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path(
                "progress/",
                self.admin_site.admin_view(self.progress_view),
                name=f"{name}_progress",
            ),
            path(
                "<path:object_id>/resend/",
                self.admin_site.admin_view(self.resend_view),
                name=f"{name}_resend",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "can_resend": self.has_resend_permission(request)}
        if request.method == "GET":
            extra_context["progress"] = progress.take(request)
        return super().change_view(request, object_id, form_url, extra_context)

    def changelist_view(self, request, extra_context=None):
        extra_context = extra_context or {}
        if request.method == "GET":
            extra_context["progress"] = progress.take(request)
        return super().changelist_view(request, extra_context)

    def progress_view(self, request):
        """JSON for the progress box: how many of the started attempts have landed."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        return JsonResponse(progress.measure(request, request.GET))

    def resend_view(self, request, object_id):
        return require_POST(self._resend)(request, object_id)

    def _resend(self, request, object_id):
        delivery = self.get_object(request, unquote(object_id))
        if delivery is None:
            raise Http404("No such delivery.")
        if not self.has_resend_permission(request, delivery):
            raise PermissionDenied
        since = timezone.now()
        try:
            # Sent by a worker after this request: the page shows the outcome when it lands.
            delivery = actions.resend_one(delivery)
        except DeliveryBusy as exc:
            messages.warning(request, str(exc))
        else:
            progress.remember(
                request, label="Resend", since=since, expected=1, delivery=delivery.pk
            )
        return HttpResponseRedirect(reverse("admin:webhooks_delivery_change", args=[delivery.pk]))
