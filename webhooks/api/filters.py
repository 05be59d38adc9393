"""Query filters of the list endpoints."""

from __future__ import annotations

from datetime import UTC

import django_filters
from django import forms
from django_filters.fields import IsoDateTimeField

from ..models import Delivery, Event


class UTCDateTimeField(IsoDateTimeField):
    """An ISO 8601 date-time, turned into UTC: PostgreSQL refuses offsets past ±15:59,
    which ISO 8601 (and Python) allow."""

    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return None
        try:
            return value.astimezone(UTC)
        except OverflowError:
            raise forms.ValidationError(
                "Enter a date and time between the years 1 and 9999.", code="invalid"
            ) from None


class UTCDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UTCDateTimeField


class DeliveryFilter(django_filters.FilterSet):
    subscription = django_filters.UUIDFilter(
        field_name="subscription_id", help_text="Only deliveries to this webhook (its id)."
    )
    status = django_filters.ChoiceFilter(choices=Delivery.Status.choices)
    event_type = django_filters.CharFilter(
        field_name="event__type", help_text="Only deliveries of this event type, e.g. item.created."
    )
    created_after = UTCDateTimeFilter(
        field_name="created_at", lookup_expr="gte", help_text="Created at or after (ISO 8601)."
    )
    created_before = UTCDateTimeFilter(
        field_name="created_at", lookup_expr="lt", help_text="Created before (ISO 8601)."
    )

    class Meta:
        model = Delivery
        fields = ["subscription", "status", "event_type", "created_after", "created_before"]


class EventFilter(django_filters.FilterSet):
    type = django_filters.CharFilter(help_text="Only events of this type, e.g. item.created.")
    occurred_after = UTCDateTimeFilter(
        field_name="occurred_at", lookup_expr="gte", help_text="Occurred at or after (ISO 8601)."
    )
    occurred_before = UTCDateTimeFilter(
        field_name="occurred_at", lookup_expr="lt", help_text="Occurred before (ISO 8601)."
    )

    class Meta:
        model = Event
        fields = ["type", "occurred_after", "occurred_before"]
