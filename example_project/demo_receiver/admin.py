from django.contrib import admin

from .models import ReceivedWebhook


@admin.register(ReceivedWebhook)
class ReceivedWebhookAdmin(admin.ModelAdmin):
    list_display = ["name", "event_type", "verified", "received_at"]
    list_filter = ["name", "verified"]
    readonly_fields = ["name", "headers", "body", "verified", "error", "received_at"]
