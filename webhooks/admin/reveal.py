"""A new signing secret, carried across the redirect to the one page that shows it.

Sessions are signed, not encrypted, and usually sit in a database table: the session
holds only a Fernet token of the secret (``WEBHOOKS_ENCRYPTION_KEYS``), which is removed
when the page shows it and is refused after ``TTL`` seconds if the page is never opened.
"""

from __future__ import annotations

import time

from cryptography.fernet import InvalidToken
from django.contrib import messages

from ..encryption import multifernet

SESSION_KEY = "webhooks:reveal-secret:{}"
#: How long the redirected page has to show the secret.
TTL = 300


def remember(request, subscription, secret: str) -> None:
    token = multifernet().encrypt(secret.encode("utf-8")).decode("ascii")
    request.session[SESSION_KEY.format(subscription.pk)] = token


def take(request, subscription) -> str | None:
    """The secret to show on this page (once), or None."""
    token = request.session.pop(SESSION_KEY.format(subscription.pk), None)
    if not token:
        return None
    try:
        # The clock read here, not inside cryptography (whose Fernet became Rust in 51).
        secret = multifernet().decrypt_at_time(
            token.encode("ascii"), ttl=TTL, current_time=int(time.time())
        )
        return secret.decode("utf-8")
    except InvalidToken:
        messages.warning(
            request,
            f"The new signing secret can no longer be shown: it was kept for {TTL // 60} "
            "minutes only. Rotate the secret to make one you can copy.",
        )
        return None
