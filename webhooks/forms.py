"""Admin forms: the "Add webhook" configurator and the "resend failed since…" form."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from .builtin_events import OPERATIONAL_CATEGORY, UNSUBSCRIBABLE_TYPES
from .encryption import UnreadableSecret
from .models import EventType, Subscription
from .validation import (
    MASK,
    RATE_LIMIT_ACCEPTED,
    masked_headers,
    unmask_headers,
    validate_headers,
    validate_rate_limit,
    validate_room_for_webhook,
    validate_sensitive_headers,
    validate_unique_url,
    validate_unmarking,
    validate_url,
)
from .words import duration_words

#: Suffix of the per-category "select all" checkboxes of the events widget.
CATEGORY_SUFFIX = "__category"
ALL_EVENTS_HELP = "Every event type, including those added later."


class GroupedEventTypesWidget(forms.CheckboxSelectMultiple):
    """Event types as checkboxes grouped by category, each group with a "select all" box.

    A ticked "select all" box selects every type of its category on the server too, so
    it works with JavaScript switched off. It is rendered unticked (the script ticks it
    when all its types are), so it never re-adds a type the user has just unticked.
    """

    template_name = "admin/webhooks/widgets/event_types.html"

    class Media:
        js = ["webhooks/admin.js"]
        css = {"all": ["webhooks/admin.css"]}

    def _types(self):
        return [value.instance for value, _label in self.choices if hasattr(value, "instance")]

    def value_from_datadict(self, data, files, name):
        values = list(super().value_from_datadict(data, files, name) or [])
        getlist = getattr(data, "getlist", None)
        categories = set(getlist(name + CATEGORY_SUFFIX)) if getlist else set()
        if categories:
            values += [str(t.pk) for t in self._types() if (t.category or "Other") in categories]
        return list(dict.fromkeys(values))

    def get_context(self, name, value, attrs):
        # Widget's, not ChoiceWidget's: its option groups would query the types once more.
        context = forms.Widget.get_context(self, name, value, attrs)
        selected = {str(v) for v in (value or [])}
        groups: dict[str, list[dict]] = {}
        for index, event_type in enumerate(self._types()):
            groups.setdefault(event_type.category or "Other", []).append(
                {
                    "id": f"{context['widget']['attrs'].get('id', 'id_' + name)}_{index}",
                    "value": str(event_type.pk),
                    "name": event_type.name,
                    "description": event_type.description,
                    "is_active": event_type.is_active,
                    "checked": str(event_type.pk) in selected,
                }
            )
        operational = groups.pop(OPERATIONAL_CATEGORY, None)
        context["groups"] = [
            {
                "category": category,
                "options": options,
                "slug": f"{name}_group_{number}",
                "selected": sum(1 for option in options if option["checked"]),
            }
            for number, (category, options) in enumerate(groups.items())
        ]
        # About the tenant's own webhooks, not the platform: offered apart, below.
        context["operational"] = (
            {"category": OPERATIONAL_CATEGORY, "options": operational} if operational else None
        )
        context["selected"] = len(selected & {o["value"] for g in groups.values() for o in g})
        context["category_name"] = name + CATEGORY_SUFFIX
        return context


class HeadersField(forms.JSONField):
    """JSON object of extra headers; shown empty rather than as ``null`` or ``{}``."""

    def prepare_value(self, value):
        if value in (None, {}):
            return ""
        return super().prepare_value(value)


class HeaderNamesField(forms.CharField):
    """A list of header names, typed as ``X-Key, X-Other``."""

    def prepare_value(self, value):
        if isinstance(value, list | tuple):
            return ", ".join(str(name) for name in value)
        return value

    def to_python(self, value):
        text = super().to_python(value) or ""
        return [name.strip() for name in text.split(",") if name.strip()]


#: What the rate limit field says, in the admin and the portal.
RATE_LIMIT_HELP = (
    "The most messages per second this webhook receives, for a receiver that cannot take "
    "more. Events beyond it wait their turn and are sent as soon as the rate allows: none "
    f"is dropped or counted as a failure. Accepted: {RATE_LIMIT_ACCEPTED}."
)


class RateLimitField(forms.CharField):
    """Messages per second, or empty: checked by ``validate_rate_limit``, so the admin, the
    portal and the API refuse the same values with the same words."""

    widget = forms.TextInput

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)
        self.widget.attrs.update({"inputmode": "numeric", "size": 8, "placeholder": "no limit"})

    def clean(self, value):
        value = super().clean(value)
        return validate_rate_limit(value)


#: Shown next to the password after a form error: the page never carries it back.
RETYPE_PASSWORD = (
    "Type the password again: for safety it is not sent back to the page after an error."
)


class SubscriptionForm(forms.ModelForm):
    """Add or change a webhook. The password is write-only; an empty one keeps the old."""

    #: The tenant a new webhook goes to when the form has no "scope" field to choose one
    #: (the admin sets it per request to the tenant of whoever is adding).
    tenant_scope: str | None = None

    # Not a URLField: its maxlength cut pasted URLs silently, and its own "Enter a valid
    # URL" came on top of the core's message. ``clean_url`` gives the API's one message.
    url = forms.CharField(
        label="URL",
        widget=forms.URLInput(attrs={"class": "vURLField", "size": 80}),
        help_text="Where the events are POSTed: an https:// URL reachable on the public internet.",
    )
    event_types = forms.ModelMultipleChoiceField(
        label="Events",
        # webhook.test is sent on request to one webhook; nobody subscribes to it.
        queryset=EventType.objects.exclude(name__in=UNSUBSCRIBABLE_TYPES).order_by(
            "category", "name"
        ),
        widget=GroupedEventTypesWidget,
        required=False,
    )
    basic_auth_password = forms.CharField(
        label="Basic-auth password",
        required=False,
        strip=False,
        max_length=150,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )
    headers = HeadersField(
        label="Extra headers",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text='Sent with every request, as JSON, e.g. {"X-Team": "payments"}. '
        "The signature, content and authorization headers cannot be overridden. "
        f"Secret values show as {MASK}; leave them so to keep them.",
        error_messages={"invalid": 'Write the headers as JSON, e.g. {"X-Team": "payments"}.'},
    )
    rate_limit = RateLimitField(label="Rate limit (messages per second)", help_text=RATE_LIMIT_HELP)
    sensitive_headers = HeaderNamesField(
        label="Secret headers",
        required=False,
        help_text="Names of extra headers whose values are secrets, comma-separated: they "
        "are never shown again, nor logged. Names like Authorization, *token*, *key*, "
        "*secret* or cookie are secret anyway. To remove a name, enter that header's "
        "value again in Extra headers.",
        widget=forms.TextInput(attrs={"size": 60}),
    )

    class Meta:
        model = Subscription
        fields = [
            "description",
            "url",
            "is_active",
            "all_events",
            "event_types",
            "basic_auth_username",
            "basic_auth_password",
            "headers",
            "sensitive_headers",
            "rate_limit",
            "owner",
            "scope",
        ]
        labels = {
            "is_active": "Active",
            "all_events": "All events",
            "basic_auth_username": "Basic-auth user name",
        }
        help_texts = {"all_events": ALL_EVENTS_HELP}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        password = self.fields["basic_auth_password"]
        if self.instance.pk and isinstance(self.instance.basic_auth_password, UnreadableSecret):
            password.help_text = (
                "The stored password cannot be decrypted (WEBHOOKS_ENCRYPTION_KEYS): type it "
                "again. Left empty, it is kept as stored."
            )
        elif self.instance.pk and self.instance.basic_auth_password:
            password.help_text = (
                "A password is set. Leave this empty to keep it; "
                "empty the user name as well to remove basic auth."
            )
        else:
            password.help_text = "Sent as HTTP basic auth with the user name."
        if self.instance.pk and "headers" in self.fields:
            self.initial["headers"] = masked_headers(self.instance)
            if isinstance(self.instance.headers, UnreadableSecret):
                self.fields["headers"].help_text = (
                    "The stored headers cannot be read (WEBHOOKS_ENCRYPTION_KEYS): write them "
                    "again, or {} to remove them. Left empty, they are kept as stored."
                )
        scope = self.fields.get("scope")
        if isinstance(scope, forms.ChoiceField) and self.instance.scope:
            known = {value for value, _ in scope.choices}
            if self.instance.scope not in known:  # keep a scope the choices no longer list
                scope.choices = [*scope.choices, (self.instance.scope, self.instance.scope)]

    def clean_url(self):
        return validate_url(self.cleaned_data.get("url", ""))

    def _update_errors(self, errors):
        # The model checks again what the form has checked (``Subscription.clean``): a
        # field the form already refused keeps the form's message alone.
        if hasattr(errors, "error_dict"):
            for field in [f for f in errors.error_dict if f in self._errors]:
                del errors.error_dict[field]
            if not errors.error_dict:
                return
        super()._update_errors(errors)

    def _scope(self, data) -> str | None:
        """The tenant this webhook is (to be) in."""
        if "scope" in self.fields:
            return data.get("scope", "")
        return self.tenant_scope if self.instance._state.adding else self.instance.scope

    def clean_headers(self):
        headers = self.cleaned_data.get("headers")
        if headers in (None, ""):
            stored = self.instance.headers if self.instance.pk else {}
            # Headers that cannot be read are shown empty: left so, they stay as stored.
            return stored if isinstance(stored, UnreadableSecret) else {}
        validate_headers(headers)
        return headers  # masks are replaced in clean(), once the secret names are known

    def clean_sensitive_headers(self):
        names = self.cleaned_data.get("sensitive_headers") or []
        validate_sensitive_headers(names)
        return names

    def _post_clean(self):
        super()._post_clean()
        # After any error the page comes back without the password typed: say so, so
        # that it is not saved without one by the next submit.
        typed = self.data.get(self.add_prefix("basic_auth_password"))
        if self.errors and typed and "basic_auth_password" not in self.errors:
            self.add_error("basic_auth_password", RETYPE_PASSWORD)

    def clean(self):
        data = super().clean()
        if isinstance(data.get("headers"), dict):  # not unreadable headers kept as stored
            if "sensitive_headers" in data:
                try:
                    validate_unmarking(self.instance, data["headers"], data["sensitive_headers"])
                except ValidationError as exc:
                    self.add_error("sensitive_headers", exc)
            try:
                data["headers"] = unmask_headers(data["headers"], self.instance.headers)
            except ValidationError as exc:
                self.add_error("headers", exc)
        if not data.get("all_events") and not data.get("event_types"):
            if "event_types" not in self.errors:
                self.add_error("event_types", "Choose at least one event, or “All events”.")
        if "basic_auth_password" in data and not data["basic_auth_password"]:
            # Write-only: an empty field keeps the stored password, unless basic auth is
            # being removed (no user name).
            keep = self.instance.basic_auth_password if self.instance.pk else ""
            username = data.get("basic_auth_username")
            data["basic_auth_password"] = keep if username else ""
            unchanged = self.instance.pk and username == self.instance.basic_auth_username
            if username and not keep and not unchanged:
                # A new user name with no password is most likely a password lost on the
                # way (e.g. by an earlier form error): ask rather than save without it.
                self.add_error(
                    "basic_auth_password", "Enter the basic-auth password for this user name."
                )
        scope = self._scope(data)
        if data.get("url") and scope is not None:
            try:
                validate_unique_url(data["url"], scope, exclude=self.instance)
            except ValidationError as exc:
                existing = exc.params["existing"]
                link = reverse("admin:webhooks_subscription_change", args=[existing.pk])
                self.add_error(
                    "url",
                    format_html(
                        'This account already has a webhook for this URL: <a href="{}">{}</a>. '
                        "Change that one (its events, headers or state) instead of adding a "
                        "second, which would receive every event twice.",
                        link,
                        existing,
                    ),
                )
        if self.instance._state.adding:  # (a new webhook already has its uuid pk)
            scope = data.get("scope", "") if "scope" in self.fields else self.tenant_scope
            try:
                if scope is not None:  # None: a user of no tenant, refused when saving
                    validate_room_for_webhook(scope)
            except ValidationError as exc:
                self.add_error(None, exc)
        return data


class RecoverForm(forms.Form):
    """ "Resend all failed since…" on a webhook's page."""

    since = forms.DateTimeField(
        label="Resend every failed delivery since",
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        error_messages={
            "required": "Enter the time to resend from, e.g. 2026-12-04 09:00.",
            "invalid": "Enter the time as YYYY-MM-DD HH:MM (e.g. 2026-12-04 09:00).",
        },
    )

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("initial", {"since": timezone.now() - timedelta(days=1)})
        super().__init__(*args, **kwargs)

    def clean_since(self):
        since = self.cleaned_data["since"]
        if since > timezone.now():
            raise ValidationError("Pick a moment in the past.")
        return since


#: How long the old secret may keep signing after a rotation, as offered: long enough for
#: a receiver's deploy, never more than a week (as Stripe's "roll secret").
ROTATION_OVERLAPS = {0: "none", 3600: "1 hour", 24 * 3600: "24 hours", 7 * 24 * 3600: "7 days"}


class RotateSecretForm(forms.Form):
    """ "Rotate secret" on a webhook's page, with how long the old secret keeps signing."""

    overlap = forms.TypedChoiceField(
        label="The old secret keeps signing for",
        coerce=int,
        required=False,
        empty_value=None,
    )

    def __init__(self, *args, default: float, **kwargs):
        super().__init__(*args, **kwargs)
        # WEBHOOKS_SECRET_ROTATION_OVERLAP is the one chosen unless another is picked.
        names = {int(default): duration_words(default), **ROTATION_OVERLAPS}
        seconds = sorted(names)
        self.fields["overlap"].choices = [
            (n, names[n] if n else "none: the old secret stops at once") for n in seconds
        ]
        self.fields["overlap"].initial = int(default)
        self.fields["overlap"].error_messages["invalid_choice"] = (
            "Choose how long the old secret keeps signing: "
            + ", ".join(names[n] for n in seconds[:-1])
            + f" or {names[seconds[-1]]}."
        )
        self.default = default

    def clean_overlap(self):
        overlap = self.cleaned_data.get("overlap")
        return self.default if overlap is None else overlap
