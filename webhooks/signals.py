"""Public signals a host app can listen to. All are sent with ``send_robust``."""

from django.dispatch import Signal

#: A delivery reached a 2xx answer. Arguments: ``delivery``, ``attempt``.
delivery_succeeded = Signal()

#: A delivery gave up: retries exhausted, or the receiver answered 410.
#: Arguments: ``delivery``, ``attempt``.
delivery_failed = Signal()

#: A subscription was switched off by the system. Arguments: ``subscription``, ``reason``.
subscription_disabled = Signal()
