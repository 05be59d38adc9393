"""Event types the app itself raises."""

from .registry import registry

TEST_EVENT_TYPE = "webhook.test"
OPERATIONAL_CATEGORY = "Webhook operations"
OPERATIONAL_TYPES = ("webhook.disabled", "webhook.failing")
#: Never offered in the event picker: sent only on request, to one webhook.
UNSUBSCRIBABLE_TYPES = (TEST_EVENT_TYPE,)


def declare_builtin_events() -> None:
    registry.event_type(
        TEST_EVENT_TYPE,
        category="Webhooks",
        description="A test event, sent on request from the admin or the API to check a webhook.",
        example={"subscription_id": "6f1c…", "message": "This is a test event."},
    )

    # Operational events: about the tenant's own webhooks, as Svix sends them.
    registry.event_type(
        "webhook.disabled",
        category=OPERATIONAL_CATEGORY,
        description="One of your webhooks was switched off after failing, or on its "
        "receiver's request (410).",
        example={
            "subscription_id": "6f1c…",
            "url": "https://example.com/hooks",
            "reason": "Every delivery has failed since 2026-11-20 08:00 UTC.",
        },
    )
    registry.event_type(
        "webhook.failing",
        category=OPERATIONAL_CATEGORY,
        description="One of your webhooks has started failing: a delivery was given up "
        "after every retry.",
        example={
            "subscription_id": "6f1c…",
            "url": "https://example.com/hooks",
            "failing_since": "2026-11-20T08:00:00Z",
            "consecutive_failures": 12,
        },
    )
