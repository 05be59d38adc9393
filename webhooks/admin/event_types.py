"""Event types: what the host can raise. They come from the code registry, never by hand."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Count, Q

from .. import tenancy
from ..models import EventType, Subscription
from .common import (
    NoSecretLookupsMixin,
    plan_refused,
    pretty_json,
    request_scope,
    restrict,
    sees_all,
)


@admin.register(EventType)
class EventTypeAdmin(NoSecretLookupsMixin, admin.ModelAdmin):
    empty_value_display = "—"
    list_display = ["name", "category", "description", "subscribers", "is_active"]
    list_editable = ["is_active"]
    list_filter = ["is_active", "category"]
    search_fields = ["name", "description"]
    fields = [
        "name",
        "category",
        "description",
        "example",
        "json_schema",
        "subscribers",
        "is_active",
    ]
    readonly_fields = ["name", "category", "description", "example", "json_schema", "subscribers"]

    def has_module_permission(self, request):
        return not plan_refused(request) and super().has_module_permission(request)

    def has_add_permission(self, request):
        return False  # declared in code (webhook_events.py), synced by migrate

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        # Switching a type off affects every tenant: only staff who see all of them may.
        return super().has_change_permission(request, obj) and sees_all(request)

    def get_queryset(self, request):
        scope = request_scope(request)
        if scope is tenancy.NO_SCOPE:
            visible = Q(pk__in=[])
        else:
            visible = Q() if scope is None else Q(subscriptions__scope=scope)
        return (
            super()
            .get_queryset(request)
            .annotate(subscribed=Count("subscriptions", filter=visible, distinct=True))
        )

    def _all_events_count(self, request) -> int:
        if not hasattr(request, "_webhooks_all_events"):
            request._webhooks_all_events = restrict(
                request, Subscription.objects.filter(all_events=True)
            ).count()
        return request._webhooks_all_events

    def get_list_display(self, request):
        everything = self._all_events_count(request)

        @admin.display(description="Subscribers", ordering="subscribed")
        def subscribers(obj):
            return obj.subscribed + everything

        return [subscribers if n == "subscribers" else n for n in self.list_display]

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is not None:
            obj.everything = self._all_events_count(request)
        return obj

    @admin.display(description="Subscribers")
    def subscribers(self, obj):
        """Webhooks subscribed to this type, plus those subscribed to all events."""
        return getattr(obj, "subscribed", 0) + getattr(obj, "everything", 0)

    @admin.display(description="Example payload")
    def example(self, obj):
        return pretty_json(obj.example_payload)

    @admin.display(description="JSON schema")
    def json_schema(self, obj):
        return pretty_json(obj.schema)
