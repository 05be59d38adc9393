"""Checks on what a customer configures: target URL, extra headers, basic auth."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError

from .security import validate_target_url

#: Headers the system sets itself; a subscription may not replace them.
RESERVED_HEADERS = frozenset(
    {
        "authorization",
        "connection",
        "content-encoding",
        "content-length",
        "content-type",
        "host",
        "proxy-authorization",
        "transfer-encoding",
        "user-agent",
        "webhook-id",
        "webhook-signature",
        "webhook-timestamp",
    }
)
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
MAX_HEADERS = 20


def validate_headers(headers) -> None:
    if headers in (None, ""):
        return
    if not isinstance(headers, dict):
        raise ValidationError(
            'Headers must be an object of name → value, e.g. {"X-Team": "payments"}.',
            code="headers_type",
        )
    if len(headers) > MAX_HEADERS:
        raise ValidationError(f"At most {MAX_HEADERS} extra headers are allowed.", code="too_many")
    for name, value in headers.items():
        if not isinstance(name, str) or not _TOKEN.match(name):
            raise ValidationError(
                f"“{name}” is not a valid header name (letters, digits and - only).",
                code="header_name",
            )
        if name.lower() in RESERVED_HEADERS:
            raise ValidationError(
                f"The header “{name}” is set by the webhook system and cannot be overridden. "
                f"Reserved: {', '.join(sorted(RESERVED_HEADERS))}.",
                code="reserved_header",
            )
        if not isinstance(value, str) or "\r" in value or "\n" in value or len(value) > 1000:
            raise ValidationError(
                f"The value of “{name}” must be text of at most 1000 characters, on one line.",
                code="header_value",
            )


def validate_basic_auth(username: str, password: str) -> None:
    if ":" in (username or ""):
        raise ValidationError({"basic_auth_username": "A basic-auth user name cannot contain “:”."})
    if password and not username:
        raise ValidationError(
            {"basic_auth_username": "Give a user name to go with the basic-auth password."}
        )


def validate_subscription(subscription) -> None:
    errors: dict[str, list] = {}
    for field, check in (
        ("url", lambda: validate_target_url(subscription.url)),
        ("headers", lambda: validate_headers(subscription.headers)),
    ):
        try:
            check()
        except ValidationError as exc:
            errors.setdefault(field, []).extend(exc.messages)
    try:
        validate_basic_auth(subscription.basic_auth_username, subscription.basic_auth_password)
    except ValidationError as exc:
        for field, messages in exc.message_dict.items():
            errors.setdefault(field, []).extend(messages)
    if errors:
        raise ValidationError(errors)
