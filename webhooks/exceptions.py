"""The exceptions a host app may meet."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured


class WebhooksError(Exception):
    """Base of every error raised by ``webhooks``."""


class UnknownEventType(WebhooksError, ImproperlyConfigured):
    """``send_event`` was given a type that is not declared in code."""


class InvalidPayload(WebhooksError, TypeError):
    """Event data that cannot be stored as JSON."""


class DeliveryBusy(WebhooksError):
    """The delivery is being sent by a worker right now."""
