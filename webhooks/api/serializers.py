"""What the API reads and writes. Validation reuses the core's checks, so the API refuses
exactly what the admin refuses, with the same words."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied
from rest_framework.settings import api_settings

from .. import actions, tenancy
from ..models import Delivery, DeliveryAttempt, Event, EventType, Subscription
from ..validation import (
    MAX_RATE_LIMIT,
    RATE_LIMIT_ACCEPTED,
    masked_headers,
    unmask_headers,
    validate_basic_auth,
    validate_headers,
    validate_rate_limit,
    validate_room_for_webhook,
    validate_sensitive_headers,
    validate_unique_url,
    validate_unmarking,
    validate_url,
)


def _messages(exc: DjangoValidationError) -> list[str]:
    return list(exc.messages)


class EventTypeSerializer(serializers.ModelSerializer):
    class Meta:
        model = EventType
        fields = ["name", "category", "description", "example_payload", "schema"]
        read_only_fields = fields


class EventTypeNamesField(serializers.ListField):
    """The subscribed event types, read and written as a list of names."""

    child = serializers.CharField(max_length=100)

    def get_attribute(self, instance):
        return sorted(t.name for t in instance.event_types.all())


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": {"type": "string", "maxLength": 1000},
        "maxProperties": 20,
        "example": {"X-Team": "payments"},
    }
)
class HeadersField(serializers.JSONField):
    """Extra request headers, name → value; the core's rules say which are allowed."""


class HeaderNamesField(serializers.ListField):
    """Names of headers; a stored value that is no list of names (a row written without
    this API) reads as none rather than failing the page."""

    def to_representation(self, data):
        if not isinstance(data, list):
            return []
        return super().to_representation(data)


@extend_schema_field({"type": "string", "format": "uri", "maxLength": 2000})
class TargetURLField(serializers.CharField):
    """A webhook's URL; checked by ``validate_url`` below, before any DNS look-up."""


@extend_schema_field(
    {"type": "integer", "minimum": 1, "maximum": MAX_RATE_LIMIT, "nullable": True, "example": 10}
)
class RateLimitField(serializers.Field):
    """Messages per second, or null for no limit; ``validate_rate_limit`` says what is
    accepted, in the admin's and the portal's words."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_null", True)
        super().__init__(**kwargs)

    def validate_empty_values(self, data):
        if data is None:  # "no limit", not a missing value
            return True, None
        return super().validate_empty_values(data)

    def to_internal_value(self, data):
        try:
            return validate_rate_limit(data)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(_messages(exc)) from exc

    def to_representation(self, value):
        return value


class SubscriptionSerializer(serializers.ModelSerializer):
    url = TargetURLField(
        # No max_length here: the core says how long it is and what is accepted.
        help_text="Where events are POSTed: an http(s) URL on the public internet.",
    )
    event_types = EventTypeNamesField(
        required=False,
        help_text="Names of the event types to receive (see event-types/).",
    )
    headers = HeadersField(
        required=False,
        help_text="Extra headers sent with every request. The values of sensitive headers "
        "(see sensitive_headers) read as ******** and are never shown again; sending "
        "******** back keeps the stored value.",
    )
    sensitive_headers = HeaderNamesField(
        child=serializers.CharField(max_length=100),
        required=False,
        max_length=20,
        help_text="Names of extra headers whose values are secrets (write-only). Headers "
        "named like a credential (Authorization, *token*, *key*, *secret*, cookie…) are "
        "treated so anyway. To stop treating a header as secret, send its value again in "
        "headers in the same request: a stored secret value is never shown.",
    )
    basic_auth_password = serializers.CharField(
        max_length=150,
        required=False,
        allow_blank=True,
        write_only=True,
        trim_whitespace=False,
        style={"input_type": "password"},
        help_text="Sent as HTTP basic auth with the user name; never shown again.",
    )
    rate_limit = RateLimitField(
        help_text="At most this many messages per second are sent to this webhook; events "
        "beyond it wait their turn (never dropped, never counted as failures). Accepted: "
        f"{RATE_LIMIT_ACCEPTED} (null). Test events and resends are not limited.",
    )
    scope = serializers.CharField(
        max_length=100,
        required=False,
        allow_blank=True,
        help_text="The tenant this webhook belongs to. Set for you from your account; only "
        "users who may see every tenant choose it.",
    )

    class Meta:
        model = Subscription
        fields = [
            "id",
            "url",
            "description",
            "event_types",
            "all_events",
            "is_active",
            "basic_auth_username",
            "basic_auth_password",
            "headers",
            "sensitive_headers",
            "rate_limit",
            "scope",
            "disabled_reason",
            "disabled_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "disabled_reason", "disabled_at", "created_at", "updated_at"]

    # -- field checks ------------------------------------------------------------------

    def validate_url(self, value: str) -> str:
        try:
            return validate_url(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(_messages(exc)) from exc

    def validate_event_types(self, names: list[str]) -> list[str]:
        names = list(dict.fromkeys(names))
        valid = set(EventType.objects.filter(is_active=True).values_list("name", flat=True))
        unknown = [name for name in names if name not in valid]
        if unknown:
            raise serializers.ValidationError(
                f"Unknown event type{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}. "
                f"Valid names: {', '.join(sorted(valid))}."
            )
        return names

    def validate_headers(self, value):
        try:
            validate_headers(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(_messages(exc)) from exc
        return value

    def validate_sensitive_headers(self, value):
        try:
            validate_sensitive_headers(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(_messages(exc)) from exc
        return value

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if "headers" in data:
            data["headers"] = masked_headers(instance)
        return data

    def validate_scope(self, value: str) -> str:
        allowed = tenancy.scope_for_user(self.context["request"].user)
        if allowed is not tenancy.ALL_SCOPES and value != allowed:
            raise serializers.ValidationError(
                "You can only manage webhooks of your own account; leave scope out."
            )
        return value

    def validate(self, attrs):
        instance = self.instance

        def current(name, default=None):
            if name in attrs:
                return attrs[name]
            return getattr(instance, name) if instance is not None else default

        try:
            validate_basic_auth(
                current("basic_auth_username", ""), current("basic_auth_password", "")
            )
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from exc
        sent_headers = (attrs["headers"] or {}) if "headers" in attrs else None
        try:
            validate_unmarking(instance, sent_headers, current("sensitive_headers", []))
        except DjangoValidationError as exc:
            raise serializers.ValidationError({"sensitive_headers": _messages(exc)}) from exc
        if "headers" in attrs:
            try:
                attrs["headers"] = unmask_headers(
                    attrs["headers"], instance.headers if instance is not None else {}
                )
            except DjangoValidationError as exc:
                raise serializers.ValidationError({"headers": _messages(exc)}) from exc

        if "event_types" in attrs:
            has_types = bool(attrs["event_types"])
        else:
            has_types = instance is not None and instance.event_types.exists()
        if not current("all_events", False) and not has_types:
            raise serializers.ValidationError(
                {
                    "event_types": [
                        "Choose at least one event type, or set all_events to true to "
                        "receive every event."
                    ]
                }
            )
        if instance is None:
            try:
                validate_room_for_webhook(self._new_webhook_scope(attrs))
            except DjangoValidationError as exc:
                raise serializers.ValidationError(
                    {api_settings.NON_FIELD_ERRORS_KEY: _messages(exc)}
                ) from exc
        if "url" in attrs or "scope" in attrs:
            scope = self._new_webhook_scope(attrs) if instance is None else current("scope")
            try:
                validate_unique_url(current("url"), scope, exclude=instance)
            except DjangoValidationError as exc:
                raise serializers.ValidationError({"url": _messages(exc)}) from exc
        return attrs

    def _new_webhook_scope(self, attrs) -> str:
        """The tenant a webhook created by this request belongs to."""
        scope = tenancy.scope_for_user(self.context["request"].user)
        if scope is tenancy.NO_SCOPE:
            raise PermissionDenied("You have no account whose webhooks you may manage.")
        if scope is tenancy.ALL_SCOPES:
            scope = attrs.get("scope", "")
        return scope

    # -- writes ------------------------------------------------------------------------

    def create(self, validated_data):
        names = validated_data.pop("event_types", [])
        user = self.context["request"].user
        validated_data["scope"] = self._new_webhook_scope(validated_data)
        validated_data["owner"] = user
        subscription = Subscription.objects.create(**validated_data)
        subscription.event_types.set(EventType.objects.filter(name__in=names))
        return subscription

    def update(self, instance, validated_data):
        names = validated_data.pop("event_types", None)
        if validated_data.get("is_active") and not instance.is_active:
            validated_data.update(actions.enabled_fields())  # as the admin's Enable
        elif validated_data.get("is_active") is False and instance.is_active:
            # Who, when and why, as the admin records it.
            user = self.context["request"].user
            validated_data.update(
                actions.disabled_fields(f"Switched off by {user} through the API.")
            )
        for name, value in validated_data.items():
            setattr(instance, name, value)
        # Only the fields sent: a worker may be updating the failure counters meanwhile.
        instance.save(update_fields=[*validated_data, "updated_at"])
        if names is not None:
            instance.event_types.set(EventType.objects.filter(name__in=names))
        return instance


class SubscriptionCreatedSerializer(SubscriptionSerializer):
    """The create answer: the only time the signing secret is shown."""

    secret = serializers.CharField(
        read_only=True,
        help_text="The signing secret (whsec_…). Store it now: it is never shown again.",
    )

    class Meta(SubscriptionSerializer.Meta):
        fields = [*SubscriptionSerializer.Meta.fields, "secret"]


class RotateSecretRequestSerializer(serializers.Serializer):
    """Documents the optional body of rotate-secret (checked by the admin's form)."""

    overlap = serializers.IntegerField(
        required=False,
        help_text="Seconds the old secret keeps signing: 0, 3600, 86400 or 604800.",
    )


class RotatedSecretSerializer(serializers.Serializer):
    secret = serializers.CharField(help_text="The new signing secret; never shown again.")
    previous_secret_expires_at = serializers.DateTimeField(
        allow_null=True,
        help_text="Until then the old secret signs too, so receivers can switch over "
        "(null when the old secret could not sign, e.g. could not be decrypted: it is dropped).",
    )


class RecoverSerializer(serializers.Serializer):
    since = serializers.DateTimeField(help_text="Resend failed deliveries created from then…")
    until = serializers.DateTimeField(
        required=False, allow_null=True, help_text="…until then (default: now)."
    )

    def validate(self, attrs):
        until = attrs.get("until")
        if until is not None and until <= attrs["since"]:
            raise serializers.ValidationError({"until": ["until must be later than since."]})
        return attrs


class RecoveredSerializer(serializers.Serializer):
    queued = serializers.IntegerField(
        help_text="How many failed deliveries were queued to be resent (each is sent, "
        "and logged as a manual attempt, by a worker shortly)."
    )


class WebhookStatsSerializer(serializers.Serializer):
    """One webhook's figures (``webhooks.stats.endpoint``): the same as the admin shows."""

    at = serializers.DateTimeField(help_text="When the figures were computed.")
    success_rate_24h = serializers.FloatField(
        allow_null=True,
        help_text="Share (0–1) of the delivery attempts made since since_24h that "
        "succeeded (2xx in time), automatic and manual alike; null when none was made.",
    )
    success_rate_7d = serializers.FloatField(allow_null=True, help_text="The same since since_7d.")
    since_24h = serializers.DateTimeField(
        help_text="Where the 24-hour window starts: the start of the hour (UTC) 24 hours "
        "before `at` (windows count whole hours, so this one covers 24 to 25 hours)."
    )
    since_7d = serializers.DateTimeField(
        help_text="Where the 7-day window starts: the start of the hour 7 days before `at`."
    )
    attempts_24h = serializers.IntegerField(help_text="Attempts made since since_24h.")
    succeeded_24h = serializers.IntegerField(help_text="…of which succeeded.")
    attempts_7d = serializers.IntegerField(help_text="Attempts made since since_7d.")
    succeeded_7d = serializers.IntegerField(help_text="…of which succeeded.")
    latency_p50_ms = serializers.IntegerField(
        allow_null=True,
        help_text="Median duration (ms) of the last attempts of the last 24 hours "
        "(at most 1000, see latency_sample); null when none was made.",
    )
    latency_p95_ms = serializers.IntegerField(
        allow_null=True, help_text="95th percentile of the same durations (nearest rank)."
    )
    latency_sample = serializers.IntegerField(
        help_text="How many attempt durations the percentiles are of."
    )
    due = serializers.IntegerField(
        help_text="Deliveries owed whose next attempt time has come (the backlog)."
    )
    pending = serializers.IntegerField(
        help_text="Every delivery still owed: due, waiting for a retry, or being sent."
    )
    last_success_at = serializers.DateTimeField(
        allow_null=True,
        help_text="The last successful attempt since since_7d (null: none).",
    )
    last_attempt_at = serializers.DateTimeField(
        allow_null=True, help_text="The newest attempt (null: never tried)."
    )
    last_attempt_succeeded = serializers.BooleanField(allow_null=True)
    last_attempt_status_code = serializers.IntegerField(
        allow_null=True, help_text="The HTTP status of the newest attempt (null: no answer)."
    )
    last_attempt_error_kind = serializers.CharField(
        allow_blank=True, help_text="Why the newest attempt failed without an answer, if so."
    )


class DeliveryAttemptSerializer(serializers.ModelSerializer):
    request_body = serializers.CharField(
        read_only=True,
        help_text="The exact body sent (the event's envelope, the bytes that were signed).",
    )

    class Meta:
        model = DeliveryAttempt
        fields = [
            "number",
            "trigger",
            "request_url",
            "request_headers",
            "request_body",
            "response_status_code",
            "response_headers",
            "response_body",
            "duration_ms",
            "succeeded",
            "error_kind",
            "error_message",
            "created_at",
        ]
        read_only_fields = fields


class DeliverySerializer(serializers.ModelSerializer):
    webhook_id = serializers.CharField(
        read_only=True, help_text="The webhook-id header: the same on every attempt."
    )
    event_type = serializers.CharField(source="event.type", read_only=True)

    class Meta:
        model = Delivery
        fields = [
            "id",
            "webhook_id",
            "subscription",
            "event",
            "event_type",
            "status",
            "attempt_count",
            "next_attempt_at",
            "last_status_code",
            "last_error",
            "last_attempt_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class DeliveryDetailSerializer(DeliverySerializer):
    attempts = DeliveryAttemptSerializer(many=True, read_only=True)
    payload = serializers.SerializerMethodField(help_text="The event's data, as sent.")

    class Meta(DeliverySerializer.Meta):
        fields = [*DeliverySerializer.Meta.fields, "payload", "attempts"]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.ANY)
    def get_payload(self, delivery):
        return delivery.event.data


class EventSerializer(serializers.ModelSerializer):
    class Meta:
        model = Event
        fields = ["id", "type", "data", "scope", "source_model", "source_id", "occurred_at"]
        read_only_fields = fields
