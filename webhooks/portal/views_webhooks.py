"""The customer's webhooks: the list, one webhook's page, add, edit, switch off and on.

Every page reads only ``self.access.scope``'s webhooks: another customer's webhook is a
404, the same answer as one that does not exist. Figures and states come from
``webhooks.stats``, as in the admin and the API.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.http import Http404, HttpResponseRedirect

from .. import actions, ratelimit, stats
from ..admin import reveal
from ..encryption import UnreadableSecret
from ..models import Subscription
from ..validation import masked_headers
from ..words import rate_limit_words
from .forms import DisableForm, PortalWebhookForm
from .views import PortalView

#: Webhooks per page of the list (a customer has few: WEBHOOKS_MAX_WEBHOOKS_PER_SCOPE).
PER_PAGE = 50


class WebhookList(PortalView):
    section = "webhooks"

    def get(self, request):
        webhooks = with_list_figures(self.mine()).order_by("-created_at", "pk")
        page = Paginator(webhooks, PER_PAGE).get_page(request.GET.get("page"))
        shown = list(page.object_list)
        rates = stats.day_rates([webhook.pk for webhook in shown])
        rows = [row(webhook, *rates.get(webhook.pk, (0, 0))) for webhook in shown]
        return self.render("webhooks/portal/webhook_list.html", rows=rows, page=page)

    def mine(self):
        return Subscription.objects.filter(scope=self.access.scope)


def with_list_figures(queryset):
    """Each webhook with its last attempt (its state's input) and its number of types."""
    types = Subscription.event_types.through.objects.filter(subscription=OuterRef("pk"))
    return stats.with_last_attempt(queryset).annotate(
        event_type_count=Subquery(
            types.order_by().values("subscription").annotate(n=Count("pk")).values("n")[:1],
            output_field=IntegerField(),
        )
    )


def row(webhook, attempts: int, succeeded: int) -> dict:
    count = webhook.event_type_count or 0
    return {
        "webhook": webhook,
        "events": "All events" if webhook.all_events else f"{count} event{'s' * (count != 1)}",
        "state": stats.webhook_state(webhook, stats.last_attempt_of(webhook)),
        "rate": stats.percent_text(stats.rate(succeeded, attempts)),
        "attempts": attempts,
        "succeeded": succeeded,
    }


class OneWebhookView(PortalView):
    """A page about one of the customer's webhooks (``pk`` in the URL)."""

    def get_webhook(self, pk) -> Subscription:
        try:
            return Subscription.objects.get(pk=pk, scope=self.access.scope)
        except Subscription.DoesNotExist:
            raise Http404("No such webhook.") from None

    @staticmethod
    def this(webhook):
        """The webhook as a queryset, for the actions that switch webhooks off and on."""
        return Subscription.objects.filter(pk=webhook.pk)

    def detail_url(self, webhook) -> str:
        return self.url("webhook", webhook.pk)


class WebhookDetail(OneWebhookView):
    def get(self, request, pk):
        webhook = self.get_webhook(pk)
        figures = stats.endpoint(webhook)
        return self.render(
            "webhooks/portal/webhook_detail.html",
            webhook=webhook,
            figures=figures,
            state=stats.webhook_state(webhook, figures.last_attempt),
            day_percent=stats.percent_text(figures.success_rate_24h),
            week_percent=stats.percent_text(figures.success_rate_7d),
            event_names=[] if webhook.all_events else event_names(webhook),
            headers=masked_headers(webhook),
            rate_limit=rate_limit_words(ratelimit.rate_of(webhook)),
            password_set=bool(webhook.basic_auth_password),
            password_unreadable=isinstance(webhook.basic_auth_password, UnreadableSecret),
            # A secret made by "Add" (or rotation) on the way here: shown this once (and
            # not spent by a HEAD request, which shows nothing).
            new_secret=reveal.take(request, webhook) if request.method == "GET" else None,
            disable_form=DisableForm(),
        )


def event_names(webhook) -> list[str]:
    return list(webhook.event_types.order_by("category", "name").values_list("name", flat=True))


class WebhookAdd(PortalView):
    change_required = True

    def get(self, request):
        return self.page(self.form())

    def post(self, request):
        form = self.form(request.POST)
        if not form.is_valid():
            return self.page(form, status=400)
        webhook = form.save()
        # The secret crosses to the webhook's page encrypted in the session (as in the
        # admin), never in the URL; that page shows it once.
        reveal.remember(request, webhook, webhook.secret)
        messages.success(request, f"The webhook “{webhook}” was added.")
        return HttpResponseRedirect(self.url("webhook", webhook.pk))

    def form(self, data=None) -> PortalWebhookForm:
        return PortalWebhookForm(data, scope=self.access.scope, owner=self.access.user)

    def page(self, form, status=200):
        return self.render(
            "webhooks/portal/webhook_form.html", status=status, form=form, webhook=None
        )


class WebhookEdit(OneWebhookView):
    change_required = True

    def get(self, request, pk):
        webhook = self.get_webhook(pk)
        return self.page(self.form(webhook), webhook)

    def post(self, request, pk):
        webhook = self.get_webhook(pk)
        form = self.form(webhook, request.POST)
        if not form.is_valid():
            return self.page(form, webhook, status=400)
        form.save()
        messages.success(request, f"The webhook “{webhook}” was saved.")
        return HttpResponseRedirect(self.detail_url(webhook))

    def form(self, webhook, data=None) -> PortalWebhookForm:
        return PortalWebhookForm(data, instance=webhook, scope=self.access.scope)

    def page(self, form, webhook, status=200):
        return self.render(
            "webhooks/portal/webhook_form.html", status=status, form=form, webhook=webhook
        )


class WebhookDisable(OneWebhookView):
    """POST only: switch the webhook off, with an optional reason shown beside it."""

    change_required = True

    def post(self, request, pk):
        webhook = self.get_webhook(pk)
        form = DisableForm(request.POST)
        if not form.is_valid():
            messages.error(request, " ".join(form.errors["reason"]))
            return HttpResponseRedirect(self.detail_url(webhook))
        reason = form.cleaned_data["reason"]
        # As the admin words it ("Switched off by alice in the admin: …"); a magic-link
        # session has no user to name.
        user = self.access.user
        who = f"by {user.get_username()} " if user is not None else ""
        reason = f"Switched off {who}in the portal" + (f": {reason}" if reason else ".")
        if actions.disable(self.this(webhook), reason):
            messages.success(
                request,
                f"The webhook “{webhook}” is switched off. Nothing is sent to it; its "
                "deliveries are kept and sent once it is switched on again.",
            )
        else:
            messages.info(request, "This webhook was already switched off.")
        return HttpResponseRedirect(self.detail_url(webhook))


class WebhookEnable(OneWebhookView):
    """POST only: switch the webhook back on with a clean slate (as the admin and API)."""

    change_required = True

    def post(self, request, pk):
        webhook = self.get_webhook(pk)
        # As the admin's Enable and the API's is_active: the failure streak is cleared.
        if actions.enable(self.this(webhook)):
            messages.success(
                request,
                f"The webhook “{webhook}” is on again. Deliveries held while it was off "
                "will be sent.",
            )
        else:
            messages.info(request, "This webhook was already on.")
        return HttpResponseRedirect(self.detail_url(webhook))
