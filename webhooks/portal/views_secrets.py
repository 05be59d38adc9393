"""A webhook's signing secret (shown once, rotation with an overlap) and its test event.

The secret crosses from the action that makes it to the one page that shows it through
``webhooks.admin.reveal`` (an encrypted, expiring session token, removed when shown): it is
never in a URL, a message, a log or any later page. A page showing it is never cached.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import NoReverseMatch
from django.utils import timezone
from django.utils.cache import add_never_cache_headers

from .. import actions
from ..admin import reveal
from ..admin.common import as_uuid, attempt_summary, duration_words
from ..admin.progress import sentence
from ..exceptions import InvalidPayload
from ..models import Delivery, EventType, Subscription
from .views import PortalView, portal_url

#: Seconds the old secret keeps signing after a rotation, as the customer chooses it.
OVERLAP_CHOICES = [
    (0, "None: the old secret stops signing at once"),
    (3600, "1 hour"),
    (24 * 3600, "24 hours"),
    (7 * 24 * 3600, "7 days"),
]
DEFAULT_OVERLAP = 24 * 3600


def optional_url(request, name: str, *args) -> str | None:
    """The URL of a portal page that may not exist in this version (built in parallel)."""
    try:
        return portal_url(request, name, *args)
    except NoReverseMatch:
        return None


def webhook_url(request, webhook) -> str:
    """Where "back to the webhook" leads: its page, else the list."""
    return optional_url(request, "webhook", webhook.pk) or portal_url(request, "webhooks")


def reveal_new_secret(request, webhook: Subscription) -> HttpResponseRedirect:
    """After making a webhook (or a secret): show its secret once, on the secret page."""
    reveal.remember(request, webhook, webhook.secret)
    return HttpResponseRedirect(portal_url(request, "secret", webhook.pk))


class RotateForm(forms.Form):
    overlap = forms.TypedChoiceField(
        label="How long should the old secret keep signing?",
        choices=OVERLAP_CHOICES,
        coerce=int,
        initial=DEFAULT_OVERLAP,
        widget=forms.RadioSelect,
        error_messages={
            "required": "Choose how long the old secret keeps signing.",
            "invalid_choice": "Choose one of the offered overlaps: none, 1 hour, 24 hours or "
            "7 days.",
        },
    )


class PortalWebhookView(PortalView):
    """A page about one of the customer's webhooks; any other pk is a 404."""

    def webhook(self, pk) -> Subscription:
        return get_object_or_404(Subscription, pk=pk, scope=self.access.scope)


class WebhookSecret(PortalWebhookView):
    def get(self, request, pk):
        webhook = self.webhook(pk)
        response = self.show(webhook, RotateForm(), secret=reveal.take(request, webhook))
        # Whether or not it shows a secret now, nobody's back button or proxy keeps it.
        add_never_cache_headers(response)
        return response

    def post(self, request, pk):
        if not self.access.can_change:
            return self.refuse(request)
        webhook = self.webhook(pk)
        form = RotateForm(request.POST)
        if not form.is_valid():
            return self.show(webhook, form, status=400)
        overlap = form.cleaned_data["overlap"]
        reveal.remember(request, webhook, actions.rotate_secret(webhook, overlap=overlap))
        webhook.refresh_from_db()
        if webhook.previous_secret_expires_at is None or not overlap:
            messages.success(request, "The signing secret was rotated; only the new one signs.")
        else:
            until = timezone.localtime(webhook.previous_secret_expires_at)
            messages.success(
                request,
                "The signing secret was rotated. The previous secret still signs until "
                f"{until:%Y-%m-%d %H:%M %Z} ({duration_words(overlap)}).",
            )
        return HttpResponseRedirect(portal_url(request, "secret", webhook.pk))

    def show(self, webhook, form, *, secret: str | None = None, status: int = 200):
        expires = webhook.previous_secret_expires_at
        if expires is not None and expires <= timezone.now():
            expires = None
        return self.render(
            "webhooks/portal/secret.html",
            status=status,
            webhook=webhook,
            back_url=webhook_url(self.request, webhook),
            secret=secret,
            form=form,
            previous_until=expires,
        )


class TestEventForm(forms.Form):
    event_type = forms.ChoiceField(label="Event type")
    payload = forms.CharField(
        label="Payload (JSON)",
        strip=False,
        widget=forms.Textarea(attrs={"rows": 14, "spellcheck": "false", "class": "whp-code"}),
        error_messages={"required": "Write the payload to send, as JSON (e.g. {})."},
    )

    def __init__(self, *args, types: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["event_type"].choices = [(name, name) for name in types]
        self.fields["event_type"].error_messages["invalid_choice"] = (
            "This webhook does not receive %(value)s events: choose one of the types it "
            "is subscribed to."
        )

    def clean_payload(self):
        text = self.cleaned_data["payload"]
        try:
            return json.loads(text)
        except ValueError as exc:
            raise forms.ValidationError(
                f"The payload is not valid JSON: {exc.msg} at line {exc.lineno}, "
                f"column {exc.colno}.",
                code="invalid_json",
            ) from exc


def example_text(payload) -> str:
    try:
        return json.dumps(payload, indent=2, ensure_ascii=False, sort_keys=False)
    except (TypeError, ValueError):  # a row written by another path: start from nothing
        return "{}"


class SendTestEvent(PortalWebhookView):
    """Send one event of a type the webhook receives, with an editable example payload."""

    change_required = True

    def get(self, request, pk):
        webhook = self.webhook(pk)
        types = actions.example_types(webhook)
        examples = self.examples(types)
        chosen = request.GET.get("type", "")
        chosen = chosen if chosen in examples else (types[0] if types else "")
        form = TestEventForm(
            types=types, initial={"event_type": chosen, "payload": examples.get(chosen, "{}")}
        )
        sent = self.sent_delivery(webhook, request.GET.get("sent", ""))
        return self.show(webhook, form, examples, sent=sent)

    def post(self, request, pk):
        webhook = self.webhook(pk)
        types = actions.example_types(webhook)
        examples = self.examples(types)
        if "load_example" in request.POST:  # without JavaScript: fill in the chosen example
            chosen = request.POST.get("event_type", "")
            form = TestEventForm(
                types=types,
                initial={"event_type": chosen, "payload": examples.get(chosen, "{}")},
            )
            return self.show(webhook, form, examples)
        form = TestEventForm(request.POST, types=types)
        if form.is_valid():
            type_name = form.cleaned_data["event_type"]
            try:
                delivery = actions.send_payload(webhook, type_name, form.cleaned_data["payload"])
            except InvalidPayload as exc:
                form.add_error("payload", str(exc))
            else:
                messages.success(
                    request, f"A test {type_name} event is queued; its outcome is shown below."
                )
                url = portal_url(request, "test", webhook.pk)
                query = urlencode({"type": type_name, "sent": delivery.pk})
                return HttpResponseRedirect(f"{url}?{query}")
        return self.show(webhook, form, examples, status=400)

    @staticmethod
    def examples(types: list[str]) -> dict[str, str]:
        rows = EventType.objects.filter(name__in=types).values_list("name", "example_payload")
        return {name: example_text(payload) for name, payload in rows}

    def sent_delivery(self, webhook, text: str) -> dict | None:
        """The outcome of a test event sent from this page (this webhook's deliveries only)."""
        pk = as_uuid(text) if text else None
        delivery = (
            Delivery.objects.filter(pk=pk, subscription=webhook).select_related("event").first()
            if pk
            else None
        )
        if delivery is None:
            return None
        attempt = delivery.attempts.order_by("-created_at").first()
        if delivery.status == Delivery.Status.PENDING or attempt is None:
            outcome = "Sending… reload this page to see the outcome."
        elif delivery.status == Delivery.Status.SUCCEEDED:
            outcome = f"Delivered: {sentence(attempt_summary(attempt))}"
        else:
            outcome = f"Failed: {sentence(attempt_summary(attempt))}"
        return {
            "delivery": delivery,
            "outcome": outcome,
            "done": delivery.status != Delivery.Status.PENDING,
            "url": optional_url(self.request, "delivery", delivery.pk),
        }

    def show(self, webhook, form, examples, *, sent=None, status=200):
        return self.render(
            "webhooks/portal/test_event.html",
            status=status,
            webhook=webhook,
            back_url=webhook_url(self.request, webhook),
            form=form,
            examples=examples,
            sent=sent,
        )
