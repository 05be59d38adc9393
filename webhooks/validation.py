"""Checks on what goes out: a customer's target URL, extra headers and basic auth, and the
data of an event raised by the host."""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import URLValidator

from .conf import conf
from .encryption import UnreadableSecret
from .exceptions import InvalidPayload
from .models import Subscription
from .security import numeric_host_problem, validate_target_url

#: The longest webhook URL accepted (the column's length).
MAX_URL_LENGTH = 2000

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
#: Header names that carry credentials: their values are write-only and never logged.
SENSITIVE_HEADER_NAME = re.compile(
    r"auth|token|key|secret|passw|cookie|session|credential|signature|api-?key", re.IGNORECASE
)
#: How a secret header value is shown: sending it back unchanged keeps the stored value.
MASK = "********"


def is_sensitive_header_name(name: str) -> bool:
    return bool(SENSITIVE_HEADER_NAME.search(name))


_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
MAX_HEADERS = 20
MAX_HEADER_NAME = 100


_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # HTTP allows a tab, no other control


def sendable_problem(text: str) -> str | None:
    """Why ``text`` cannot go in an HTTP header (latin-1 text, no control characters)."""
    if _CONTROL.search(text):
        return "control characters (line breaks, NUL…)"
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return "characters outside Latin-1 (e.g. emoji or non-Latin scripts)"
    return None


def validate_url(url) -> str:
    """``url`` stripped, or the one ``ValidationError`` that says what is wrong with it.

    The admin, the API and ``Subscription.clean`` call this alone, so a URL gets the same
    single message everywhere: too long (with its length), the scheme given, a host that
    is a number, malformed, unresolvable, not public, or plain http where https is needed.
    """
    if not isinstance(url, str):
        raise ValidationError("Give the URL as text.", code="invalid_url")
    url = url.strip()
    if not url:
        raise ValidationError("Enter the URL the events are POSTed to.", code="required")
    if len(url) > MAX_URL_LENGTH:
        raise ValidationError(
            f"The URL is too long: {len(url)} characters, at most {MAX_URL_LENGTH} are "
            "accepted. Use a shorter path, and put tokens in a header instead of the URL.",
            code="url_too_long",
        )
    try:
        scheme = urlsplit(url).scheme
    except ValueError:
        scheme = ""
    if scheme in ("http", "https") and not _credentials_in(url):
        # Plain syntax first, so that nothing malformed is ever looked up in DNS (a URL
        # with credentials gets the core's more useful message below).
        try:
            URLValidator(schemes=["http", "https"])(url)
        except ValidationError:
            host = urlsplit(url).hostname or ""
            problem = host and numeric_host_problem(host)
            raise ValidationError(
                problem or "Enter a valid URL, e.g. https://example.com/webhooks.",
                code="numeric_host" if problem else "invalid_url",
            ) from None
    validate_target_url(url)
    return url


def _credentials_in(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.username is not None or parts.password is not None


def validate_unique_url(url: str, scope: str, *, exclude=None) -> None:
    """Refuse a second webhook with the same URL in one tenant: each event would be sent
    to it twice. (Different tenants may share a URL: a service receiving for several.)"""
    existing = Subscription.objects.filter(scope=scope or "", url=url)
    if exclude is not None and exclude.pk:
        existing = existing.exclude(pk=exclude.pk)
    found = existing.only("pk", "description", "url").first()
    if found is not None:
        raise ValidationError(
            f"This account already has a webhook for this URL: “{found}” ({found.pk}). "
            "Change that one (its events, headers or state) instead of adding a second, "
            "which would receive every event twice.",
            code="duplicate_url",
            params={"existing": found},
        )


def credential_problem(text: str) -> str | None:
    """As ``sendable_problem``, and no tab either: a header value may hold one, but a tab
    in a password is a paste gone wrong far more often than a chosen character."""
    if "\t" in text:
        return "control characters (a tab, line breaks, NUL…)"
    return sendable_problem(text)


def validate_headers(headers) -> None:
    if headers is None or isinstance(headers, str) and not headers:
        return
    if isinstance(headers, UnreadableSecret):
        return  # stored, not given: kept as it is (it makes no request; the admin says so)
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
                f"“{str(name)[:MAX_HEADER_NAME]}” is not a valid header name (letters, "
                "digits and - only).",
                code="header_name",
            )
        if len(name) > MAX_HEADER_NAME:
            raise ValidationError(
                f"A header name is at most {MAX_HEADER_NAME} characters long.",
                code="header_name",
            )
        if name.lower() in RESERVED_HEADERS:
            raise ValidationError(
                f"The header “{name}” is set by the webhook system and cannot be overridden. "
                f"Reserved: {', '.join(sorted(RESERVED_HEADERS))}.",
                code="reserved_header",
            )
        if not isinstance(value, str) or len(value) > 1000:
            raise ValidationError(
                f"The value of “{name}” must be text of at most 1000 characters, on one line.",
                code="header_value",
            )
        problem = sendable_problem(value)
        if problem:
            raise ValidationError(
                f"The value of “{name}” cannot be sent in an HTTP header: it holds {problem}. "
                "Use printable Latin-1 text (e.g. ASCII letters, digits and punctuation).",
                code="header_value",
            )


def validate_sensitive_headers(names) -> None:
    if names in (None, ""):
        return
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValidationError(
            'Sensitive headers must be a list of header names, e.g. ["X-Signature-Key"].',
            code="sensitive_headers",
        )
    for name in names:
        if not _TOKEN.match(name):
            raise ValidationError(
                f"“{name}” is not a valid header name (letters, digits and - only).",
                code="header_name",
            )


def validate_basic_auth(username: str, password: str) -> None:
    username, password = username or "", password or ""
    errors = {}
    if not isinstance(username, str):  # only a row written without the forms
        username = str(username)
    if isinstance(password, UnreadableSecret):
        password = "set"  # the stored one, kept as it is: a password is set, unreadable
    if ":" in username:
        errors["basic_auth_username"] = "A basic-auth user name cannot contain “:”."
    elif credential_problem(username):
        errors["basic_auth_username"] = (
            f"The basic-auth user name cannot be sent: it holds {credential_problem(username)}. "
            "Use printable Latin-1 text."
        )
    if password and not username:
        errors["basic_auth_username"] = "Give a user name to go with the basic-auth password."
    if password and credential_problem(password):
        # Never echo the password, nor the offending character: it is part of a secret.
        errors["basic_auth_password"] = (
            f"The basic-auth password cannot be sent: it holds {credential_problem(password)}. "
            "Use printable Latin-1 text."
        )
    if errors:
        raise ValidationError(errors)


def unmask_headers(headers: dict, previous: dict) -> dict:
    """Headers as submitted, with each masked secret value (sent back unchanged from a read)
    replaced by the value stored before."""
    result = {}
    if not isinstance(previous, dict):  # unreadable (or not an object): nothing to keep
        previous = {}
    for name, value in (headers or {}).items():
        if value == MASK:
            stored = {k.lower(): v for k, v in previous.items()}.get(name.lower())
            if stored is None:
                raise ValidationError(
                    f"Give a value for the header “{name}”: “{MASK}” stands for a stored "
                    "secret value, and this webhook has none.",
                    code="header_value",
                )
            value = stored
        result[name] = value
    return result


def validate_unmarking(subscription, headers, sensitive_headers) -> None:
    """Refuse a change that would make a stored secret header value readable.

    A header stops being secret when its name leaves ``sensitive_headers`` (names compare
    case-insensitively; names like a credential stay secret anyway). Its stored value was
    never shown, so it may only become readable replaced by a new value sent in the same
    change. ``headers`` are the headers as sent (masks included), or None when not sent
    (the stored ones are kept).
    """
    if subscription is None:
        return
    was_secret = {name.lower() for name in subscription.sensitive_header_names()}
    marked = {str(name).lower() for name in sensitive_headers or []}
    if headers is None:
        stored = subscription.headers
        kept = list(stored) if isinstance(stored, dict) else []  # unreadable: nothing to show
    elif not isinstance(headers, dict):
        return
    else:
        kept = [name for name, value in headers.items() if value == MASK]
    revealed = [
        name
        for name in kept
        if name.lower() in was_secret
        and name.lower() not in marked
        and not is_sensitive_header_name(name)
    ]
    if revealed:
        raise ValidationError(
            [
                f"To stop treating the header “{name}” as secret, enter its value again "
                f"(not {MASK}) in the same change: a stored secret value is never shown."
                for name in revealed
            ],
            code="unmarked_secret",
        )


def masked_headers(subscription) -> dict:
    """A subscription's extra headers as shown to people: secret values masked.

    Headers that cannot be read (``UnreadableSecret``) or are not an object show as none.
    """
    headers = subscription.headers
    if not isinstance(headers, dict):
        return {}
    return {
        name: MASK if subscription.is_sensitive_header(name) else value
        for name, value in headers.items()
    }


#: The highest rate limit accepted, in messages per second.
MAX_RATE_LIMIT = 10000
#: What a rate limit may be, in the words every form, the API and the docs use.
RATE_LIMIT_ACCEPTED = (
    f"a whole number of messages per second from 1 to {MAX_RATE_LIMIT}, or empty for no limit"
)


def validate_rate_limit(value) -> int | None:
    """A webhook's rate limit as stored (an int, or None for no limit), or the one
    ``ValidationError`` the admin, the API and the portal all show."""
    if value is None or isinstance(value, str) and not value.strip():
        return None
    number = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().isdecimal():
        number = int(value.strip())
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    if number is None or not 1 <= number <= MAX_RATE_LIMIT:
        shown = str(value)[:20]
        raise ValidationError(
            f"The rate limit must be {RATE_LIMIT_ACCEPTED}; “{shown}” is not.",
            code="rate_limit",
        )
    return number


def validate_subscription(subscription) -> None:
    errors: dict[str, list] = {}
    for field, check in (
        ("url", lambda: validate_url(subscription.url)),
        ("rate_limit", lambda: validate_rate_limit(subscription.rate_limit)),
        ("headers", lambda: validate_headers(subscription.headers)),
        ("sensitive_headers", lambda: validate_sensitive_headers(subscription.sensitive_headers)),
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


def validate_room_for_webhook(scope: str) -> None:
    """Refuse a new webhook in ``scope`` once it has ``WEBHOOKS_MAX_WEBHOOKS_PER_SCOPE``.

    Whatever adds webhooks (the admin, the API, a host's own pages) calls this first.
    Only adding is refused: webhooks already over the limit (made before it was set or
    lowered) keep working.
    """
    limit = conf.MAX_WEBHOOKS_PER_SCOPE
    if limit is None:
        return
    existing = Subscription.objects.filter(scope=scope).count()
    if existing >= limit:
        raise ValidationError(
            f"This account already has {existing} webhooks, and {limit} is the most allowed. "
            "Delete one it no longer needs (a disabled webhook counts too) and add this one "
            "again, or ask the platform to raise the limit.",
            code="too_many_webhooks",
        )


# -- event data ------------------------------------------------------------------------------


def _too_deep(data, limit: int) -> bool:
    """Whether lists/objects nest deeper than ``limit`` (iterative: no RecursionError)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list | tuple):
            children = value
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _strings(data):
    """Every key and string value of plain JSON data (iterative)."""
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            yield from value.keys()
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)


def to_json_text(data, *, event_type: str) -> str:
    """``data`` serialised to JSON text, or :class:`InvalidPayload` saying what is wrong.

    Everything a database (PostgreSQL's jsonb is the strictest) or a receiver's JSON parser
    would refuse is refused here, before anything is written: values that are not JSON
    (NaN, ±Infinity, objects), NUL characters, lone surrogates, nesting deeper than
    ``WEBHOOKS_MAX_PAYLOAD_DEPTH`` and more than ``WEBHOOKS_MAX_PAYLOAD_BYTES``. The text
    is what the outbox stores: the payload is serialised once.
    """
    where = f"The data of a {event_type!r} event"
    depth = conf.MAX_PAYLOAD_DEPTH
    if _too_deep(data, depth):
        raise InvalidPayload(
            f"{where} nests lists/objects more than {depth} deep (WEBHOOKS_MAX_PAYLOAD_DEPTH)."
        )
    try:
        text = json.dumps(data, cls=DjangoJSONEncoder, allow_nan=False, ensure_ascii=False)
    except ValueError as exc:
        raise InvalidPayload(
            f"{where} is not valid JSON: {exc} (NaN and ±Infinity have no JSON form; "
            "send null or a string)."
        ) from exc
    except (TypeError, RecursionError) as exc:
        raise InvalidPayload(f"{where} is not JSON-serialisable: {exc}") from exc
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise InvalidPayload(
            f"{where} holds a lone surrogate character ({exc.object[exc.start]!a}), which is "
            "not valid Unicode text; decode the text properly first."
        ) from exc
    limit = conf.MAX_PAYLOAD_BYTES
    if size > limit:
        raise InvalidPayload(
            f"{where} is {size} bytes of JSON; at most {limit} are accepted "
            "(WEBHOOKS_MAX_PAYLOAD_BYTES). Send ids and let receivers fetch the rest."
        )
    # json.dumps writes a NUL as \u0000; only then (rarely) look at the strings themselves,
    # since the text of a backslash followed by "u0000" contains it too.
    if "\\u0000" in text and any("\x00" in string for string in _strings(json.loads(text))):
        raise InvalidPayload(
            f"{where} holds a NUL character (\\x00) in a text, which JSON databases refuse; "
            "remove it."
        )
    return text


def to_json_data(data, *, event_type: str):
    """``data`` as plain JSON values (see :func:`to_json_text` for what is refused)."""
    return json.loads(to_json_text(data, event_type=event_type))
