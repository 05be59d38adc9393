"""Event types the app itself raises."""

from .registry import registry


def declare_builtin_events() -> None:
    registry.event_type(
        "webhook.test",
        category="Webhooks",
        description="A test event, sent on request from the admin or the API to check a webhook.",
        example={"subscription_id": "6f1c…", "message": "This is a test event."},
    )
