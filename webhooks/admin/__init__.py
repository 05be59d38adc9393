"""The admin's "Integrations" section: webhooks, event types, deliveries and their attempts."""

from .deliveries import DeliveryAdmin
from .event_types import EventTypeAdmin
from .subscriptions import SubscriptionAdmin

__all__ = ["DeliveryAdmin", "EventTypeAdmin", "SubscriptionAdmin"]
