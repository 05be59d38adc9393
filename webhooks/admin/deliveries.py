"""The delivery log: every event owed to a webhook, and every attempt to send it. Read-only."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from .. import actions
from ..exceptions import DeliveryBusy
from ..models import Delivery, DeliveryAttempt, EventType, Subscription
from .common import TenantAdminMixin, as_uuid, plural, pretty_json, restrict


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


class WebhookFilter(admin.SimpleListFilter):
    title = "webhook"
    parameter_name = "webhook"

    def lookups(self, request, model_admin):
        webhooks = restrict(request, Subscription.objects.only("pk", "description", "url"))
        return [(str(sub.pk), str(sub)) for sub in webhooks.order_by("description", "url")]

    def queryset(self, request, queryset):
        if self.value():
            found = as_uuid(self.value())
            return queryset.filter(subscription_id=found) if found else queryset.none()
        return queryset


class DeliveryAttemptInline(admin.StackedInline):
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    verbose_name = "attempt"
    fields = [
        "outcome",
        ("trigger", "created_at", "duration"),
        "request_url",
        "request_headers_shown",
        "request_body_shown",
        "response_headers_shown",
        "response_body_shown",
    ]
    readonly_fields = fields[:1] + [
        "trigger",
        "created_at",
        "duration",
        "request_url",
        "request_headers_shown",
        "request_body_shown",
        "response_headers_shown",
        "response_body_shown",
    ]

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
        what = (
            f"HTTP {attempt.response_status_code}" if attempt.response_status_code else "No answer"
        )
        if attempt.succeeded:
            return format_html(
                '#{} <span class="wh-status wh-good">{}</span>', attempt.number, what
            )
        error = attempt.get_error_kind_display() if attempt.error_kind else ""
        return format_html(
            '#{} <span class="wh-status wh-bad">{}</span> {} {}',
            attempt.number,
            what,
            error,
            f"— {attempt.error_message}" if attempt.error_message else "",
        )

    @admin.display(description="Duration")
    def duration(self, attempt):
        return f"{attempt.duration_ms} ms"

    @admin.display(description="Request headers (secrets redacted)")
    def request_headers_shown(self, attempt):
        return pretty_json(attempt.request_headers)

    @admin.display(description="Request body")
    def request_body_shown(self, attempt):
        body = format_html('<pre class="wh-pre">{}</pre>', attempt.request_body)
        if attempt.request_body_verified is False:
            return format_html(
                "{}<p>Rebuilt from the event; it differs from the bytes sent then "
                "(the envelope format has changed since).</p>",
                body,
            )
        return body

    @admin.display(description="Response headers")
    def response_headers_shown(self, attempt):
        return pretty_json(attempt.response_headers)

    @admin.display(description="Response body")
    def response_body_shown(self, attempt):
        if not attempt.response_body:
            return "—"
        return format_html('<pre class="wh-pre">{}</pre>', attempt.response_body)


@admin.register(Delivery)
class DeliveryAdmin(TenantAdminMixin, admin.ModelAdmin):
    scope_field = "subscription__scope"
    list_display = [
        "event_type",
        "webhook",
        "status_shown",
        "attempts",
        "code",
        "next_retry",
        "created",
    ]
    list_display_links = ["event_type"]
    list_select_related = ["event", "subscription"]
    list_filter = ["status", EventTypeFilter, WebhookFilter, "created_at"]
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
        "next_retry",
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
        return obj.event.type

    @admin.display(description="Event id")
    def event_id(self, obj):
        return str(obj.event_id)

    @admin.display(description="Webhook", ordering="subscription")
    def webhook(self, obj):
        url = reverse("admin:webhooks_subscription_change", args=[obj.subscription_id])
        return format_html('<a href="{}">{}</a>', url, obj.subscription)

    @admin.display(description="webhook-id header")
    def webhook_id_header(self, obj):
        return obj.webhook_id

    @admin.display(description="Status", ordering="status")
    def status_shown(self, obj):
        return status_badge(obj.status, obj.get_status_display())

    @admin.display(description="Attempts", ordering="attempt_count")
    def attempts(self, obj):
        return obj.attempt_count

    @admin.display(description="Last code", ordering="last_status_code")
    def code(self, obj):
        return obj.last_status_code or "—"

    @admin.display(description="Created", ordering="created_at")
    def created(self, obj):
        return short_time(obj.created_at)

    @admin.display(description="Next retry", ordering="next_attempt_at")
    def next_retry(self, obj):
        if obj.status != Delivery.Status.PENDING or obj.next_attempt_at is None:
            return "—"
        return short_time(obj.next_attempt_at)

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
        return queryset.filter(subscription__url__icontains=term), False

    # -- resending ------------------------------------------------------------------------

    @admin.action(description="Resend selected deliveries", permissions=["resend"])
    def resend_selected(self, request, queryset):
        count = actions.resend(list(queryset.values_list("pk", flat=True)))
        busy = queryset.count() - count
        if not count:
            messages.warning(
                request,
                "Nothing was resent: the selected deliveries are being sent right now; "
                "try again in a moment.",
            )
            return
        text = f"{plural(count, 'delivery is', 'deliveries are')} being resent."
        if busy:
            text += f" {plural(busy, 'other was', 'others were')} being sent already."
        messages.success(request, text)

    def get_urls(self):
        name = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path(
                "<path:object_id>/resend/",
                self.admin_site.admin_view(self.resend_view),
                name=f"{name}_resend",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "can_resend": self.has_resend_permission(request)}
        return super().change_view(request, object_id, form_url, extra_context)

    def resend_view(self, request, object_id):
        return require_POST(self._resend)(request, object_id)

    def _resend(self, request, object_id):
        delivery = self.get_object(request, unquote(object_id))
        if delivery is None:
            raise Http404("No such delivery.")
        if not self.has_resend_permission(request, delivery):
            raise PermissionDenied
        try:  # sent by a worker after this request's transaction commits, never inside it
            delivery = actions.resend_one(delivery)
        except DeliveryBusy as exc:
            messages.warning(request, str(exc))
        else:
            messages.info(request, "Resend queued; its outcome appears below when it is made.")
        return HttpResponseRedirect(reverse("admin:webhooks_delivery_change", args=[delivery.pk]))
