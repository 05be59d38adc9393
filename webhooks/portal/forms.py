"""The portal's forms: the admin's webhook form without the owner/scope choice, an event
picker that shows each type's description and example, and the "switch off" form."""

from __future__ import annotations

import json

from django import forms

from ..forms import GroupedEventTypesWidget, SubscriptionForm


class PortalEventTypesWidget(GroupedEventTypesWidget):
    """The admin's grouped checkboxes (its "select all" per category works without
    JavaScript), with each type's description as visible text and its example payload."""

    template_name = "webhooks/portal/widgets/event_types.html"

    class Media:  # the portal links its own script and stylesheet
        pass

    _loaded: list | None = None

    def _types(self):
        # Read once per form: the context and the "select all" boxes both ask.
        if self._loaded is None:
            self._loaded = super()._types()
        return self._loaded

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        examples = {str(t.pk): t.example_payload for t in self._types()}
        groups = list(context["groups"])
        if context["operational"]:
            groups.append(context["operational"])
        for group in groups:
            for option in group["options"]:
                option["example"] = example_text(examples.get(option["value"]))
        return context


def example_text(payload) -> str:
    """An example payload as indented JSON ("" for none). Stored values are untrusted:
    anything that is not JSON shows as its text rather than failing the page."""
    if payload in (None, "", {}, []):
        return ""
    try:
        return json.dumps(payload, indent=2, ensure_ascii=False, sort_keys=False)
    except (TypeError, ValueError):
        return str(payload)


class PortalWebhookForm(SubscriptionForm):
    """Add or change one of the customer's webhooks. The scope (whose webhook it is) is
    always the portal session's, never a field: a request cannot name another customer."""

    class Meta(SubscriptionForm.Meta):
        fields = [
            "description",
            "url",
            "all_events",
            "event_types",
            "basic_auth_username",
            "basic_auth_password",
            "headers",
            "sensitive_headers",
            "rate_limit",
        ]
        labels = {
            **SubscriptionForm.Meta.labels,
            "all_events": "All events, including types added later",
        }
        help_texts = {
            "description": "A name to tell this webhook from your others (optional).",
            "all_events": "Leave unticked to choose the event types below.",
        }

    #: The rate limit, as a customer reads it (the admin's says the same for staff).
    RATE_LIMIT_HELP = (
        "If your receiver can only handle so many requests, enter the most per second we "
        "may send it, e.g. 10. Events beyond that wait and are sent as soon as the rate "
        "allows: none is lost. Leave empty for no limit. Test events and resends you ask "
        "for are sent at once."
    )

    def __init__(self, *args, scope: str, owner=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.tenant_scope = scope  # the room-for-one-more check counts this customer's
        if self.instance._state.adding:
            self.instance.scope = scope
            self.instance.owner = owner
        url = self.fields["url"]
        # A browser's maxlength cuts a pasted URL silently: a URL that is too long is
        # refused by the field's own check, with a message saying so.
        url.widget.attrs.pop("maxlength", None)
        url.widget.attrs["spellcheck"] = "false"
        events = self.fields["event_types"]
        picker = PortalEventTypesWidget()
        picker.choices = events.choices
        events.widget = picker
        for field in self.fields.values():
            # The admin's sizes would overflow a phone's width: the stylesheet sizes them.
            for attr in ("size", "cols", "class"):
                field.widget.attrs.pop(attr, None)
        self.fields["basic_auth_username"].widget.attrs["autocomplete"] = "off"
        rate = self.fields["rate_limit"]
        rate.label, rate.help_text = "Rate limit (messages per second)", self.RATE_LIMIT_HELP


class DisableForm(forms.Form):
    reason = forms.CharField(
        label="Reason (optional)",
        required=False,
        max_length=200,
        help_text="Shown with the webhook while it is switched off, e.g. “receiver moving”.",
        widget=forms.TextInput(attrs={"class": "whp-input"}),
    )

    def clean_reason(self):
        # One line: it is shown inline with the state.
        return " ".join(self.cleaned_data["reason"].split())
