"""Settings > Integrations > Webhooks: add, change, test, rotate, recover."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IS_POPUP_VAR
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.module_loading import import_string
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from .. import actions, plans, signing, stats, tenancy
from ..conf import conf
from ..delivery import undecryptable_in_use
from ..encryption import FIELD_WORDS, UnreadableSecret
from ..forms import RecoverForm, RotateSecretForm, SubscriptionForm
from ..models import Delivery, DeliveryAttempt, Subscription
from ..validation import masked_headers
from . import progress, reveal
from .common import (
    TenantAdminMixin,
    as_uuid,
    plural,
    pretty_json,
    request_scope,
    sees_all,
    url_shown,
)
from .health import health
from .paging import COUNT_AT_MOST

#: Beside a webhook whose customer the plan gate (``WEBHOOKS_PLAN_GATE``) refuses.
PLAN_MARKER = "plan does not include webhooks"
PLAN_HELD = (
    "nothing is delivered to this webhook (its deliveries are held) and its "
    "organisation cannot see it, until the plan includes webhooks again."
)


def scope_choices() -> list[tuple[str, str]] | None:
    """``WEBHOOKS_SCOPE_CHOICES`` called, or None when scopes are typed as free text."""
    if not conf.SCOPE_CHOICES:
        return None
    return [(str(value), str(label)) for value, label in import_string(conf.SCOPE_CHOICES)()]


class HealthFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return list(stats.STATE_LABELS.items())

    def queryset(self, request, queryset):
        # The list's queryset carries each webhook's last attempt (with_list_figures).
        return stats.filter_state(queryset, self.value())


def with_list_figures(queryset):
    """Each webhook with its last attempt and its number of types, in the list's one query
    (its last 24 hours are added per page: ``WebhookChangeList``)."""
    types = Subscription.event_types.through.objects.filter(subscription=OuterRef("pk"))
    queryset = stats.with_last_attempt(queryset)  # the state's and last delivery's source
    return queryset.annotate(
        # 0 for none (not NULL: the column would count them again, one query per row)
        event_type_count=Coalesce(
            Subquery(
                types.order_by().values("subscription").annotate(n=Count("pk")).values("n")[:1],
                output_field=IntegerField(),
            ),
            0,
        ),
    )


class WebhookChangeList(ChangeList):
    """The list's page, with what is asked of all its webhooks at once: their last 24
    hours (``stats.day_rates``: one query) and, for those who see every customer, the
    plan gate's answer for the page's customers (one call): a constant number of queries
    per page, not one per webhook or per customer."""

    def get_results(self, request):
        super().get_results(request)
        shown = list(self.result_list)  # the page, fetched once (the queryset keeps it)
        rates = stats.day_rates([webhook.pk for webhook in shown])
        for webhook in shown:
            webhook.day_attempts, webhook.day_succeeded = rates.get(webhook.pk, (0, 0))
        if sees_all(request):
            request._webhooks_allowed_scopes = plans.allowed_scopes(w.scope for w in shown)


def switched_off_by(request, reason: str = "") -> str:
    """ "Switched off by alice in the admin: moving hosts" (the reason is optional)."""
    reason = " ".join(reason.split())
    who = f"Switched off by {request.user} in the admin"
    return f"{who}: {reason}" if reason else f"{who}."


@admin.register(Subscription)
class SubscriptionAdmin(TenantAdminMixin, admin.ModelAdmin):
    form = SubscriptionForm
    actions = ["disable_selected", "enable_selected", "delete_selected"]
    list_display = [
        "webhook",
        "scope",
        "state",
        "last_delivery",
        "success_rate",
    ]
    list_filter = [HealthFilter, "all_events"]
    empty_value_display = "—"
    search_fields = ["description", "url"]
    search_help_text = "Description, URL or the webhook's id."
    # As the delivery log: each row's checkbox and figures are rendered by the admin's
    # templates (about 2 ms a row), and a platform's webhooks are found by the search.
    list_per_page = 50
    raw_id_fields = ["owner"]
    readonly_fields = [
        "secret_hint",
        "password_state",
        "headers_shown",
        "created_at",
        "updated_at",
    ]

    class Media:
        css = {"all": ["webhooks/admin.css"]}

    # -- list ---------------------------------------------------------------------------

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if getattr(request, "_webhooks_list", False):
            return with_list_figures(queryset)
        return queryset

    def changelist_view(self, request, extra_context=None):
        request._webhooks_list = True  # the figures are for the list, not the single pages
        return super().changelist_view(request, extra_context)

    def get_changelist(self, request, **kwargs):
        return WebhookChangeList

    @admin.display(description="Webhook", ordering="description")
    def webhook(self, obj):
        # One line each: the name cut with an ellipsis, the URL in its middle (host, port
        # and the path's end stay), so that the list fits 1280 px whatever the names.
        if not obj.description:  # the URL is its name: said once
            return format_html(
                '{}<span class="wh-muted wh-small">{}</span>',
                url_shown(obj.url),
                self.events_summary(obj),
            )
        return format_html(
            '<span class="wh-cut">{}</span><span class="wh-muted wh-small wh-webhook-line">'
            "{} · {}</span>",
            obj.description,
            self.events_summary(obj),
            url_shown(obj.url),
        )

    @admin.display(description="Events")
    def events_summary(self, obj):
        if obj.all_events:
            return "All events"
        count = getattr(obj, "event_type_count", None)
        if count is None:
            count = obj.event_types.count()
        return f"{count} event{'s' if count != 1 else ''}"

    @admin.display(description="State", ordering="is_active")
    def state(self, obj):
        state = stats.webhook_state(obj, stats.last_attempt_of(obj))
        return format_html(
            '<span class="wh-state wh-state-{}" title="{}">{}</span>',
            state.key,
            state.detail,
            state.label,
        )

    @admin.display(description="Last delivery", ordering="last_attempt_at")
    def last_delivery(self, obj):
        # The last attempt, which the state beside it is read from (webhooks.stats).
        last = stats.last_attempt_of(obj)
        if last is None:
            return mark_safe('<span class="wh-muted">none yet</span>')
        if last.succeeded:
            result, css = last.outcome, "succeeded"
        else:
            result, css = f"failed, {last.outcome}", "failed"
        return format_html(
            '{}<br><span class="wh-status wh-status-{}">{}</span>',
            f"{timezone.localtime(last.at):%d %b %H:%M}",
            css,
            result,
        )

    @admin.display(description="Success, 24 h")
    def success_rate(self, obj):
        attempts = getattr(obj, "day_attempts", None) or 0
        if not attempts:
            return mark_safe('<span class="wh-muted">—</span>')
        succeeded = obj.day_succeeded or 0
        return format_html(
            '<span class="{}" title="{} of {} attempts succeeded">{}</span>',
            "wh-good" if succeeded == attempts else "wh-bad",
            succeeded,
            attempts,
            stats.percent_text(stats.rate(succeeded, attempts)),
        )

    @admin.display(description="Created", ordering="created_at")
    def created(self, obj):
        return f"{timezone.localtime(obj.created_at):%Y-%m-%d %H:%M}"

    def get_list_display(self, request):
        if not sees_all(request):  # all of one organisation: no column for it
            return [name for name in self.list_display if name != "scope"]
        labels = dict(scope_choices() or [])

        @admin.display(description="Organisation", ordering="scope")
        def organisation(obj):
            label = labels.get(obj.scope, obj.scope) or "—"
            allowed = getattr(request, "_webhooks_allowed_scopes", None)  # the page's, asked once
            if allowed is None:
                allowed = {obj.scope} if plans.allows(obj.scope) else set()
            if obj.scope in allowed:
                return label
            return format_html(
                '{}<span class="wh-muted wh-small" style="display:block">{}</span>',
                label,
                PLAN_MARKER,
            )

        return [organisation if name == "scope" else name for name in self.list_display]

    def get_search_results(self, request, queryset, search_term):
        found = as_uuid(search_term)
        if found is not None:
            return queryset.filter(pk=found), False
        return super().get_search_results(request, queryset, search_term)

    @admin.action(description="Disable selected webhooks", permissions=["change"])
    def disable_selected(self, request, queryset):
        count = actions.disable(queryset, switched_off_by(request))
        self._say_switched(request, count, "disabled")

    @admin.action(description="Enable selected webhooks", permissions=["change"])
    def enable_selected(self, request, queryset):
        count = actions.enable(queryset)
        self._say_switched(request, count, "enabled")

    @staticmethod
    def _say_switched(request, count: int, state: str) -> None:
        if count:
            messages.success(request, f"{plural(count, 'webhook is', 'webhooks are')} {state}.")
        else:
            messages.info(request, f"The selected webhooks were {state} already.")

    # -- form -----------------------------------------------------------------------------

    def get_fieldsets(self, request, obj=None):
        owner = ["owner", "scope"] if sees_all(request) else ["owner_name", "organisation_name"]
        signing = ["secret_hint", "created_at", "updated_at"] if obj else []
        # Read-only pages show model values as text: never the password itself.
        editable = self.has_change_permission(request, obj) if obj else True
        password = "basic_auth_password" if editable else "password_state"
        headers = ["headers", "sensitive_headers"] if editable else ["headers_shown"]
        sets = [
            (None, {"fields": ["description", "url", "is_active", "rate_limit"]}),
            ("Events", {"fields": ["all_events", "event_types"]}),
            (
                "Authentication and headers",
                {"fields": ["basic_auth_username", password, *headers]},
            ),
            ("Owner", {"fields": owner}),
        ]
        if signing:
            sets.append(("Signing", {"fields": signing}))
        return sets

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if not sees_all(request):
            fields += ["owner_name", "organisation_name"]
        return fields

    def get_form(self, request, obj=None, change=False, **kwargs):
        request._webhooks_scope_choices = scope_choices() if sees_all(request) else None
        form = super().get_form(request, obj, change, **kwargs)
        scope = request_scope(request)
        if isinstance(scope, str):
            form.tenant_scope = scope  # a class made for this request: set for it alone
        return form

    def get_changeform_initial_data(self, request):
        return {"owner": request.user.pk, **super().get_changeform_initial_data(request)}

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "scope":
            choices = getattr(request, "_webhooks_scope_choices", None)
            if choices is not None:
                # The host has tenants: a webhook of no organisation would receive nothing.
                return forms.ChoiceField(
                    label="Organisation",
                    choices=[("", "— choose —"), *choices],
                    required=True,
                    help_text="Whose events this webhook receives.",
                    error_messages={
                        "required": "Choose the organisation whose events this webhook receives."
                    },
                )
            kwargs["label"] = "Scope"
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    @admin.display(description="Basic-auth password")
    def password_state(self, obj):
        if obj and isinstance(obj.basic_auth_password, UnreadableSecret):
            return "(set, but it cannot be decrypted)"
        return "(set)" if obj and obj.basic_auth_password else "(none)"

    @admin.display(description="Extra headers")
    def headers_shown(self, obj):
        return pretty_json(masked_headers(obj)) if obj else "—"

    @admin.display(description="Owner")
    def owner_name(self, obj):
        return str(obj.owner) if obj and obj.owner_id else "—"

    @admin.display(description="Organisation")
    def organisation_name(self, obj):
        return (getattr(obj, "scope_label", obj.scope) if obj else "") or "—"

    @admin.display(description="Signing secret")
    def secret_hint(self, obj):
        if not obj or not obj.pk:
            return "—"
        if isinstance(obj.secret, UnreadableSecret):
            return "cannot be decrypted: rotate it to make a new one"
        if signing.secret_problem(obj.secret):
            return "not a valid signing secret: rotate it to make a new one"
        hint = f"whsec_…{obj.secret[-4:]}"
        if obj.signing_secrets() != [obj.secret]:
            until = timezone.localtime(obj.previous_secret_expires_at)
            return f"{hint} (the previous secret also signs until {until:%Y-%m-%d %H:%M %Z})"
        return f"{hint} (shown in full only when it is made)"

    def save_model(self, request, obj, form, change):
        scope = request_scope(request)
        if scope is tenancy.NO_SCOPE:
            raise PermissionDenied
        if scope is not None:
            obj.scope = scope  # a tenant's staff cannot move a webhook elsewhere
        if not change and not obj.owner_id:
            obj.owner = request.user
        if change and "is_active" in form.changed_data:
            # As the Disable and Enable buttons (and the API) do it.
            fields = (
                actions.enabled_fields()
                if obj.is_active
                else actions.disabled_fields(switched_off_by(request))
            )
            for name, value in fields.items():
                setattr(obj, name, value)
        super().save_model(request, obj, form, change)

    def response_add(self, request, obj, post_url_continue=None):
        response = super().response_add(request, obj, post_url_continue)
        if IS_POPUP_VAR in request.POST:
            # Added from another form's "+": the popup shows the secret before it closes.
            response.context_data["revealed_secret"] = obj.secret
            return response
        # Always the new webhook's page, where its secret is shown this once.
        reveal.remember(request, obj, obj.secret)
        return HttpResponseRedirect(self._change_url(obj))

    def add_view(self, request, form_url="", extra_context=None):
        # "Save and add another" would skip the page that shows the new secret.
        extra_context = {"show_save_and_add_another": False, **(extra_context or {})}
        return super().add_view(request, form_url, extra_context)

    def get_deleted_objects(self, objs, request):
        """Summarise instead of listing every delivery (a log can hold millions), each
        count read up to ``COUNT_AT_MOST`` (a busy webhook's 400,000 attempts: 0.4-0.8 s).

        The log goes with its webhook: deleting one needs only the permission to delete
        webhooks, not the (never granted) permission to delete deliveries by hand.
        """
        objs = list(objs)
        deliveries = Delivery.objects.filter(subscription__in=objs).order_by()
        attempts = DeliveryAttempt.objects.filter(delivery__in=deliveries.values("pk")).order_by()
        n_deliveries, n_attempts = (
            rows[: COUNT_AT_MOST + 1].count() for rows in (deliveries, attempts)
        )
        counts = {
            str(Subscription._meta.verbose_name_plural): len(objs),
            "deliveries": at_most(n_deliveries),
            "delivery attempts": at_most(n_attempts),
        }
        listed = [
            format_html('{} <span class="wh-muted">({})</span>', obj, obj.url) for obj in objs
        ]
        listed.append(
            f"its delivery log: {at_most(n_deliveries, 'delivery', 'deliveries')}, "
            f"{at_most(n_attempts, 'attempt', 'attempts')}"
        )
        return listed, counts, set(), []

    # -- the webhook's page -------------------------------------------------------------

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = extra_context or {}
        obj = self.get_object(request, unquote(object_id))
        if obj is not None:
            if request.method == "GET":
                extra_context["revealed_secret"] = reveal.take(request, obj)
                self._warn_if_unreadable(request, obj)
                if sees_all(request) and not plans.allows(obj.scope):  # staff of one: allowed
                    messages.warning(request, f"{PLAN_MARKER.capitalize()}: {PLAN_HELD}")
            extra_context["health"] = health(obj)
            extra_context["recover_form"] = RecoverForm()
            extra_context["can_act"] = can_act = self.has_change_permission(request, obj)
            extra_context["rotate_form"] = RotateSecretForm(default=conf.SECRET_ROTATION_OVERLAP)
            extra_context["no_tenant"] = bool(conf.SCOPE_CHOICES) and not obj.scope
            if can_act:
                extra_context["example_types"] = actions.example_types(obj)
            if request.method == "GET":
                extra_context["progress"] = progress.take(request)
        return super().change_view(request, object_id, form_url, extra_context)

    def _warn_if_unreadable(self, request, obj) -> None:
        """Say so when secrets of this webhook cannot be decrypted: it sends nothing."""
        names = undecryptable_in_use(obj)
        if not names:
            return
        words = ", ".join(FIELD_WORDS[name] for name in names)
        messages.warning(
            request,
            f"This webhook's {words} cannot be decrypted with WEBHOOKS_ENCRYPTION_KEYS, so "
            "its deliveries fail. Put back the key that encrypted them, or set them again: "
            "rotate the signing secret, type a new password, write new extra headers.",
        )

    def get_object(self, request, object_id, from_field=None):
        # One lookup per request, however many times the admin asks.
        cache = request.__dict__.setdefault("_webhooks_objects", {})
        if object_id not in cache:
            obj = super().get_object(request, object_id, from_field)
            if obj is not None and not sees_all(request):
                obj.scope_label = dict(scope_choices() or []).get(obj.scope, obj.scope)
            cache[object_id] = obj
        return cache[object_id]

    def get_urls(self):
        wrap = self.admin_site.admin_view
        name = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path(
                "<path:object_id>/send-test/",
                wrap(self.send_test_view),
                name=f"{name}_send_test",
            ),
            path(
                "<path:object_id>/rotate-secret/",
                wrap(self.rotate_secret_view),
                name=f"{name}_rotate_secret",
            ),
            path("<path:object_id>/recover/", wrap(self.recover_view), name=f"{name}_recover"),
            path("<path:object_id>/disable/", wrap(self.disable_view), name=f"{name}_disable"),
            path("<path:object_id>/enable/", wrap(self.enable_view), name=f"{name}_enable"),
            *super().get_urls(),
        ]

    def _change_url(self, obj) -> str:
        return reverse(
            f"admin:{self.opts.app_label}_{self.opts.model_name}_change",
            args=[obj.pk],
            current_app=self.admin_site.name,
        )

    def _object_to_act_on(self, request, object_id) -> Subscription:
        obj = self.get_object(request, unquote(object_id))
        if obj is None:  # missing, or another tenant's
            raise Http404("No such webhook.")
        if not self.has_change_permission(request, obj):
            raise PermissionDenied
        return obj

    @staticmethod
    def _event_link(delivery):
        return reverse("admin:webhooks_delivery_change", args=[delivery.pk])

    def send_test_view(self, request, object_id):
        return require_POST(self._send_test)(request, object_id)

    def _send_test(self, request, object_id):
        obj = self._object_to_act_on(request, object_id)
        type_name = request.POST.get("event_type", "").strip()
        if type_name and type_name not in actions.example_types(obj):
            messages.error(request, f"This webhook does not receive {type_name!r} events.")
            return HttpResponseRedirect(self._change_url(obj))
        since = timezone.now()
        # Sent by a worker after this request: the page shows the outcome when it lands.
        delivery = actions.send_example(obj, type_name)
        label = f"Example {type_name} event" if type_name else "Test event"
        progress.remember(request, label=label, since=since, expected=1, delivery=delivery.pk)
        return HttpResponseRedirect(self._change_url(obj))

    def rotate_secret_view(self, request, object_id):
        return require_POST(self._rotate_secret)(request, object_id)

    def _rotate_secret(self, request, object_id):
        obj = self._object_to_act_on(request, object_id)
        form = RotateSecretForm(request.POST, default=conf.SECRET_ROTATION_OVERLAP)
        if not form.is_valid():
            messages.error(request, " ".join(form.errors["overlap"]))
            return HttpResponseRedirect(self._change_url(obj))
        overlap = form.cleaned_data["overlap"]
        reveal.remember(request, obj, actions.rotate_secret(obj, overlap=overlap))
        obj.refresh_from_db()
        if obj.previous_secret_expires_at is None:  # the old one could not sign
            messages.success(request, "A new signing secret was made; it alone signs now.")
        else:
            until = timezone.localtime(obj.previous_secret_expires_at)
            messages.success(
                request,
                f"A new signing secret was made. The old one keeps signing too until "
                f"{until:%Y-%m-%d %H:%M %Z}.",
            )
        self.log_change(request, obj, "Rotated the signing secret.")
        return HttpResponseRedirect(self._change_url(obj))

    def recover_view(self, request, object_id):
        return require_POST(self._recover)(request, object_id)

    def _recover(self, request, object_id):
        obj = self._object_to_act_on(request, object_id)
        form = RecoverForm(request.POST)
        if not form.is_valid():
            messages.error(request, " ".join(form.errors.get("since", ["Give a date and time."])))
            return HttpResponseRedirect(self._change_url(obj))
        since = form.cleaned_data["since"]
        started = timezone.now()
        count = actions.recover(obj, since)
        when = f"{timezone.localtime(since):%Y-%m-%d %H:%M %Z}"
        if count:
            what = plural(count, "failed delivery is", "failed deliveries are")
            messages.success(request, f"{what} queued to be resent (failed since {when}).")
            progress.remember(
                request,
                # One: "Resend failed: …", not "Resending failed deliveries failed: …".
                label="Resend" if count == 1 else "Resending failed deliveries",
                since=started,
                expected=count,
                webhook=obj.pk,
            )
        else:
            messages.info(request, f"No failed deliveries since {when} to resend.")
        return HttpResponseRedirect(self._change_url(obj))

    def disable_view(self, request, object_id):
        return require_POST(self._disable)(request, object_id)

    def _disable(self, request, object_id):
        obj = self._object_to_act_on(request, object_id)
        reason = switched_off_by(request, request.POST.get("reason", ""))
        if actions.disable(Subscription.objects.filter(pk=obj.pk), reason):
            self.log_change(request, obj, reason)
            messages.success(
                request, "The webhook is disabled: nothing is sent to it until enabled."
            )
        else:
            messages.info(request, "The webhook was disabled already.")
        return HttpResponseRedirect(self._change_url(obj))

    def enable_view(self, request, object_id):
        return require_POST(self._enable)(request, object_id)

    def _enable(self, request, object_id):
        obj = self._object_to_act_on(request, object_id)
        if actions.enable(Subscription.objects.filter(pk=obj.pk)):
            self.log_change(request, obj, "Enabled the webhook.")
            messages.success(request, "The webhook is enabled.")
        else:
            messages.info(request, "The webhook was enabled already.")
        return HttpResponseRedirect(self._change_url(obj))


def at_most(counted: int, one: str = "", many: str = "") -> int | str:
    """A count read up to ``COUNT_AT_MOST`` rows: the number (or "3 deliveries"), or "more
    than 10,000" ("more than 10,000 deliveries") past it."""
    if counted > COUNT_AT_MOST:
        return f"more than {COUNT_AT_MOST:,} {many}".rstrip()
    return plural(counted, one, many) if one else counted
