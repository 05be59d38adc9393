"""Every request the demo receiver got, as it arrived."""

from django.db import models


class ReceivedWebhook(models.Model):
    name = models.SlugField(
        max_length=100, db_index=True, help_text="The inbox: /demo-receiver/<name>/"
    )
    headers = models.JSONField(default=dict)
    body = models.TextField(blank=True)
    verified = models.BooleanField(
        default=False, help_text="Signature (and basic auth, if configured) checked out."
    )
    error = models.CharField(max_length=200, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.name}: {self.event_type or '(not JSON)'}"

    @property
    def payload(self):
        import json

        try:
            return json.loads(self.body)
        except ValueError:
            return None

    @property
    def event_type(self) -> str:
        payload = self.payload
        return payload.get("type", "") if isinstance(payload, dict) else ""

    @property
    def webhook_id(self) -> str:
        return self.headers.get("webhook-id", "")
