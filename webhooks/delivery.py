"""One HTTP delivery: envelope, signing, the request, and what its outcome means.

No database writes here: ``dispatch`` decides what an outcome does to the
Delivery. ``post`` is safe to run in threads.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import os
import ssl
import threading
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from importlib.metadata import PackageNotFoundError, version
from urllib.parse import urlsplit

import urllib3
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone
from requests.utils import get_encoding_from_headers
from urllib3.exceptions import (
    HTTPError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    SSLError,
)
from urllib3.util.ssl_ import create_urllib3_context

from . import deadline, responses, signing
from .conf import conf
from .encryption import FIELD_WORDS, UnreadableSecret, unreadable_fields
from .models import Delivery, DeliveryAttempt
from .security import BlockedTargetError, ResolutionTimeout, guarded_pool_manager
from .validation import sendable_problem, validate_headers, validate_sensitive_headers

logger = logging.getLogger("webhooks")

ErrorKind = DeliveryAttempt.ErrorKind

REDACTED = "[redacted]"


@functools.cache
def package_version() -> str:
    try:
        return version("django-webhooks-outbox")
    except PackageNotFoundError:  # running from a source tree
        return "0+unknown"


def user_agent() -> str:
    return conf.USER_AGENT or f"django-webhooks/{package_version()}"


@dataclass
class OutgoingRequest:
    url: str
    headers: dict[str, str]
    body: bytes
    auth: tuple[str, str] | None = None

    def logged_headers(self, secret_header_names=()) -> dict[str, str]:
        """The headers as stored in the attempt log: credentials and secrets redacted.

        ``secret_header_names``: the subscription's extra headers whose values are secret
        (``Subscription.sensitive_header_names()``: marked so, or named like a credential).
        """
        secret_names = {name.lower() for name in secret_header_names}
        logged = {}
        for name, value in self.headers.items():
            logged[name] = REDACTED if name.lower() in secret_names else value
        if self.auth:
            logged["Authorization"] = f"Basic {REDACTED}"
        return logged


#: The answer header with which a receiver steers delivery, and the value that stops the
#: retries of the message just sent (documented in docs/receivers.md).
DELIVERY_CONTROL_HEADER = "webhook-delivery"
ABORT_MESSAGE = "abort-message"


@dataclass
class Outcome:
    status_code: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    duration_ms: int = 0
    error_kind: str = ""
    error_message: str = ""

    @property
    def succeeded(self) -> bool:
        # A 2xx whose body was still dripping at the deadline is a timeout, not a success.
        return (
            self.status_code is not None and 200 <= self.status_code < 300 and not self.error_kind
        )

    @property
    def aborted(self) -> bool:
        """The receiver failed this message and asked for no retries of it
        (``Webhook-Delivery: abort-message``, as Svix and the Standard Webhooks proposal
        name it): the delivery ends failed, and the webhook's health does not count it."""
        if self.succeeded or self.status_code is None:
            return False
        value = self._header(DELIVERY_CONTROL_HEADER)
        return str(value or "").strip().lower() == ABORT_MESSAGE

    def _header(self, name: str):
        """The answer's header ``name`` (lower case), whatever its case in the answer: the
        headers lowered once per ``headers`` object (recording asks several times)."""
        lowered = self.__dict__.get("_lowered")
        if lowered is None or lowered[0] is not self.headers:
            lowered = (self.headers, {k.lower(): v for k, v in self.headers.items()})
            self.__dict__["_lowered"] = lowered
        return lowered[1].get(name)

    @property
    def retry_after(self) -> float | None:
        """Seconds the receiver asked us to wait (``Retry-After``), if it did."""
        value = self._header("retry-after")
        if not value:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            return max(0.0, (parsedate_to_datetime(value) - timezone.now()).total_seconds())
        except (TypeError, ValueError):
            return None


def envelope(delivery: Delivery) -> bytes:
    """The body of every request of the delivery's event: made once per Event instance (a
    task's deliveries of one event share it), again if its values are replaced."""
    event = delivery.event
    made = event.__dict__.get("_webhooks_envelope")
    key = (event.id, event.type, event.occurred_at, event.data)
    if made is not None and all(a is b for a, b in zip(made[0], key, strict=True)):
        return made[1]
    body = {
        "id": str(event.id),
        "type": event.type,
        "timestamp": event.occurred_at.isoformat(),
        "data": event.data,
    }
    made = (key, json.dumps(body, cls=DjangoJSONEncoder, separators=(",", ":")).encode())
    event.__dict__["_webhooks_envelope"] = made
    return made[1]


class Unsendable(Exception):
    """What is stored for a webhook cannot make a request: its attempt fails with
    ``kind`` and ``message`` (a reason a person can act on) and nothing is sent."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind, self.message = kind, message


#: Longest URL stored in an attempt (``DeliveryAttempt.request_url``).
URL_LIMIT = DeliveryAttempt._meta.get_field("request_url").max_length


def build_request(delivery: Delivery, *, now: float | None = None) -> OutgoingRequest:
    """The signed request for this delivery.

    Every stored value is checked before use, whoever wrote it (a form, the API, a
    script, raw SQL): raises :class:`Unsendable`, saying what to fix, if the webhook's
    settings cannot make a valid request. Only rows checked here reach ``post``.
    """
    subscription = delivery.subscription
    body = envelope(delivery)
    timestamp = int(now if now is not None else time.time())
    secrets = subscription.signing_secrets()
    check_settings(subscription, secrets)
    msg_id = delivery.webhook_id
    headers = dict(subscription.headers or {})
    headers.update(
        {
            "Content-Type": "application/json",
            "User-Agent": user_agent(),
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signing.signature_header(secrets, msg_id, timestamp, body),
        }
    )
    auth = None
    if subscription.basic_auth_username:
        auth = (subscription.basic_auth_username, subscription.basic_auth_password)
    return OutgoingRequest(subscription.url, headers, body, auth)


def undecryptable_in_use(subscription, secrets=None) -> list[str]:
    """The encrypted fields a request of this webhook would use that no key decrypts
    (the previous secret only while it still signs, the password only with a user name)."""
    secrets = subscription.signing_secrets() if secrets is None else secrets
    used = {"secret": True, "previous_secret": len(secrets) > 1, "headers": True}
    used["basic_auth_password"] = bool(subscription.basic_auth_username)
    return [
        name
        for name in unreadable_fields(subscription)
        if used[name] and getattr(subscription, name).undecryptable
    ]


def check_settings(subscription, secrets=None) -> None:
    """Raise :class:`Unsendable` if this webhook's stored settings cannot be sent.

    ``secrets``: the secrets signing now (``signing_secrets()``), if already known.
    """
    secrets = subscription.signing_secrets() if secrets is None else secrets
    username = subscription.basic_auth_username
    unreadable = undecryptable_in_use(subscription, secrets)
    if unreadable:
        words = ", ".join(FIELD_WORDS[name] for name in unreadable)
        it = "it" if len(unreadable) == 1 else "them"
        raise Unsendable(
            ErrorKind.UNDECRYPTABLE,
            f"This webhook's {words} cannot be decrypted with WEBHOOKS_ENCRYPTION_KEYS (the "
            f"key that encrypted {it} was removed or replaced, or {it} was not written by "
            "this site); nothing was sent. Put that key back in the list, after the first "
            "one, or set the values again (rotate the signing secret, save a new password "
            "or new headers).",
        )
    problems = [_url_problem(subscription.url)]
    for index, secret in enumerate(secrets):
        problem = signing.secret_problem(secret)
        if problem:
            which = "signing secret" if index == 0 else "previous signing secret"
            problems.append(f"The {which} is not valid ({problem}): rotate the secret.")
    headers = subscription.headers
    try:
        if isinstance(headers, UnreadableSecret):  # decrypted, but not JSON
            raise ValidationError("they are stored in a form that is not JSON; set them again.")
        validate_headers(headers)
    except ValidationError as exc:
        problems.append("The extra headers cannot be sent: " + " ".join(exc.messages))
    try:
        validate_sensitive_headers(subscription.sensitive_headers)
    except ValidationError:
        problems.append("The list of secret headers is not a list of header names.")
    if username:
        password = subscription.basic_auth_password
        for label, value in (("user name", username), ("password", password)):
            # Never the value itself, nor where it goes wrong: it is part of a secret.
            problem = sendable_problem(value) if isinstance(value, str) else "no text"
            if problem:
                problems.append(f"The basic-auth {label} cannot be sent: it holds {problem}.")
        if isinstance(username, str) and ":" in username:
            problems.append("The basic-auth user name cannot contain “:”.")
    problems = [p for p in problems if p]
    if problems:
        problems.append("Nothing was sent; correct the webhook's settings.")
        raise Unsendable(ErrorKind.INVALID_SETTINGS, " ".join(problems))


def _url_problem(url) -> str | None:
    """Why ``url`` cannot be requested, checked without a DNS look-up (the connection
    refuses addresses that are not public: ``security``)."""
    if not isinstance(url, str) or not url:
        return "The webhook has no URL."
    return _text_url_problem(url)


@functools.lru_cache(maxsize=4096)
def _text_url_problem(url: str) -> str | None:
    """``_url_problem`` of a text: checked once per URL (each delivery checks its own)."""
    if len(url) > URL_LIMIT:
        return f"The URL is longer than {URL_LIMIT} characters."
    if any(c.isspace() or not c.isprintable() for c in url):
        return "The URL holds spaces, line breaks or other control characters."
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return "The URL is not a valid URL."
    if parts.scheme not in ("http", "https"):
        return "The URL is not an http:// or https:// URL."
    if not parts.hostname:
        return "The URL has no host name."
    if parts.username is not None or parts.password is not None:
        return "The URL holds a user name or password (use the basic-auth fields)."
    return None


def prepare(delivery: Delivery) -> tuple[OutgoingRequest, Outcome | None]:
    """The request to send, or a failed outcome and the request to log in its place.

    Never raises: a webhook whose stored settings cannot make a request (see
    ``build_request``) fails this attempt with the reason, and only this one; the others
    of the batch go on. Retried on the usual schedule, like any failed attempt.
    """
    try:
        return build_request(delivery), None
    except Unsendable as exc:
        kind, message = exc.kind, exc.message
    except Exception as exc:  # noqa: BLE001 - one bad row must not break a batch
        logger.exception("Could not build the request of delivery %s.", delivery.pk)
        # The type only: the text of an encoding error may quote part of a secret.
        kind = ErrorKind.OTHER
        message = (
            f"The request could not be built ({type(exc).__name__}); nothing was sent. "
            "Check the webhook's settings."
        )
    try:
        body = envelope(delivery)
    except Exception:  # noqa: BLE001 - the log keeps what it can
        body = b""
    url = delivery.subscription.url
    logged = OutgoingRequest(
        responses.safe_text(url if isinstance(url, str) else "", limit=URL_LIMIT), {}, body
    )
    return logged, Outcome(error_kind=kind, error_message=responses.safe_text(message, limit=500))


_local = threading.local()


class _NotWhileSending(logging.Filter):
    """urllib3 logs requests with their URL (a customer's URL may carry its secret): the
    request line at DEBUG, and a receiver's malformed headers as a warning with a traceback,
    once per answer, so a hostile receiver would flood the logs and spend the worker's CPU
    on them. Records made while this thread sends a webhook's request are dropped: the
    attempt's log says what the receiver answered."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(_local, "sending", False)


for _name in ("urllib3.connection", "urllib3.connectionpool", "urllib3.util.retry"):
    logging.getLogger(_name).addFilter(_NotWhileSending())


_tls: dict = {}
_tls_lock = threading.Lock()


def tls_context() -> ssl.SSLContext:
    """This process's TLS client context, certificates and host names checked as urllib3
    checks them. Without it urllib3 builds a context and reads the system's trust store
    for every new connection, ~18 ms of CPU, which a receiver that closes its connections
    makes every delivery wait for. Made again if ``SSL_CERT_FILE``/``SSL_CERT_DIR`` change.
    """
    key = (os.getpid(), os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
    with _tls_lock:
        if _tls.get("key") != key:
            context = create_urllib3_context()  # verify_mode CERT_REQUIRED
            context.load_default_certs()
            _tls.update(key=key, context=context)
        return _tls["context"]


def pool_manager() -> urllib3.PoolManager:
    """One connection pool per thread: kept-alive connections, the SSRF guard, no proxies.

    urllib3 directly rather than ``requests``: a request costs about a third of the CPU,
    and the worker's threads share one GIL with its database work.
    """
    context = tls_context()
    manager = getattr(_local, "manager", None)
    if manager is None or _local.context is not context:
        if manager is not None:
            manager.clear()
        manager = guarded_pool_manager(num_pools=32, maxsize=4, ssl_context=context)
        _local.manager, _local.context = manager, context
    return manager


def close_connections() -> None:
    """Close this thread's kept-alive connections (e.g. before a test server stops)."""
    manager = getattr(_local, "manager", None)
    if manager is not None:
        manager.clear()


def post(request: OutgoingRequest) -> Outcome:
    """Send one request. Never raises: every failure becomes an Outcome with an error kind.

    The whole request (connect, headers, body) ends within ``WEBHOOKS_TIMEOUT`` plus
    ``deadline.MARGIN``, however slowly the receiver answers.
    """
    started = time.monotonic()
    outcome = Outcome()
    headers = request.headers
    if request.auth:  # checked by build_request, encoded as requests encodes it
        try:
            token = base64.b64encode(":".join(request.auth).encode("latin-1")).decode()
        except (TypeError, UnicodeEncodeError):  # never the error's text: it quotes the secret
            outcome.error_kind = ErrorKind.INVALID_SETTINGS
            outcome.error_message = "The basic-auth user name or password cannot be sent."
            return outcome
        headers = {**headers, "Authorization": f"Basic {token}"}
    with deadline.request_deadline(conf.TIMEOUT) as limit:
        try:
            _local.sending = True
            try:
                response = pool_manager().urlopen(
                    "POST",
                    request.url,
                    body=request.body,
                    headers=headers,
                    timeout=_timeout(conf.TIMEOUT),
                    redirect=False,
                    retries=False,
                    preload_content=False,
                )
            finally:
                _local.sending = False
            try:
                outcome.status_code = response.status
                outcome.headers = responses.headers_dict(response.headers)
                data, broken = _read_limited(response, conf.RESPONSE_BODY_LIMIT)
                outcome.body = responses.body_text(
                    data,
                    encoding=get_encoding_from_headers(response.headers),
                    content_type=response.headers.get("Content-Type", ""),
                )
            finally:
                response.release_conn()
            if limit.expired:
                raise TimeoutError("the receiver was still sending at the deadline")
            outcome.error_kind, outcome.error_message = _classify_status(response.status)
            if outcome.aborted:
                outcome.error_message += (
                    " It asked for no retries of this message (Webhook-Delivery: abort-message)."
                )
            if broken and not outcome.error_kind:
                outcome.error_kind = ErrorKind.INVALID_RESPONSE
                outcome.error_message = "The receiver closed the connection mid-answer."
        except Exception as exc:  # noqa: BLE001 - a failed send must become a logged, retried attempt
            # The watchdog cut the connection: whatever broke then, it is a timeout (one of
            # the name's lookup says so itself).
            slow_lookup = any(isinstance(e, ResolutionTimeout) for e in _chain(exc))
            expired = limit.expired and not slow_lookup
            cause = TimeoutError("the request's deadline passed") if expired else exc
            try:
                outcome.error_kind, outcome.error_message = classify_exception(cause)
            except Exception:  # noqa: BLE001 - never let classification lose the attempt
                outcome.error_kind, outcome.error_message = ErrorKind.OTHER, repr(exc)[:400]
            outcome.error_message = responses.safe_text(outcome.error_message, limit=500)
    outcome.duration_ms = int((time.monotonic() - started) * 1000)
    return outcome


@functools.lru_cache(maxsize=8)
def _timeout(seconds: float) -> urllib3.Timeout:
    """The socket timeouts of a request (urllib3 copies the object for each request)."""
    return urllib3.Timeout(connect=seconds, read=seconds)


def _read_limited(response: urllib3.BaseHTTPResponse, limit: int) -> tuple[bytes, bool]:
    """Up to ``limit`` bytes of the answer, and whether it broke off before its end."""
    chunks, size = [], 0
    try:
        for chunk in response.stream(1024, decode_content=True):
            chunks.append(chunk)
            size += len(chunk)
            if size >= limit:
                break
    except Exception:  # noqa: BLE001 - whatever broke, the answer is incomplete
        return b"".join(chunks)[:limit], True
    return b"".join(chunks)[:limit], False


#: The messages that say no more than their error kind (the pages show the kind alone).
REFUSED_MESSAGE = "The receiver refused the connection."
UNRESOLVED_MESSAGE = "The receiver's host name could not be resolved."


def plain_message(kind: str, status: int | None) -> str | None:
    """The message this module writes for ``kind`` (and ``status``) when it knows nothing
    more than them, or None: the pages leave such a message out rather than repeat it."""
    if status:
        return _classify_status(status)[1]
    return {
        ErrorKind.CONNECTION_REFUSED: REFUSED_MESSAGE,
        ErrorKind.DNS_FAILURE: UNRESOLVED_MESSAGE,
    }.get(kind)


def _classify_status(status: int) -> tuple[str, str]:
    if 200 <= status < 300:
        return "", ""
    if 300 <= status < 400:
        return (
            ErrorKind.REDIRECT,
            f"The receiver answered {status} (a redirect); redirects are not followed.",
        )
    if 400 <= status < 500:
        return ErrorKind.HTTP_4XX, f"The receiver answered {status}."
    if 500 <= status < 600:
        return ErrorKind.HTTP_5XX, f"The receiver answered {status}."
    return ErrorKind.HTTP_OTHER, f"The receiver answered an unexpected status {status}."


def _chain(exc: BaseException):
    seen = []
    stack = [exc]
    while stack:
        current = stack.pop()
        if current is None or any(current is s for s in seen):
            continue
        seen.append(current)
        linked = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        linked.extend(getattr(current, "args", ()))
        # ``reason`` and ``args`` may hold strings (ssl.SSLError.reason does): keep exceptions.
        stack.extend(e for e in linked if isinstance(e, BaseException))
    return seen


def classify_exception(exc: BaseException) -> tuple[str, str]:
    """An error kind a person understands, and a short message."""
    chain = _chain(exc)

    def has(*types) -> bool:
        return any(isinstance(e, types) for e in chain)

    text = str(exc)[:400]
    if has(BlockedTargetError):
        blocked = next(e for e in chain if isinstance(e, BlockedTargetError))
        return ErrorKind.BLOCKED_TARGET, str(blocked)
    # urllib3's NewConnectionError (refused, unreachable, DNS) subclasses its TimeoutError.
    timed_out = any(
        isinstance(e, TimeoutError)
        or isinstance(e, urllib3.exceptions.TimeoutError)
        and not isinstance(e, NewConnectionError)
        for e in chain
    )
    if has(ResolutionTimeout):
        return ErrorKind.DNS_FAILURE, (
            f"The receiver's host name was not resolved within {conf.TIMEOUT:g} seconds "
            "(its name servers did not answer)."
        )
    if timed_out and not has(NameResolutionError, ConnectionRefusedError):
        return ErrorKind.TIMEOUT, f"No answer within {conf.TIMEOUT:g} seconds."
    if has(SSLError):
        return ErrorKind.TLS_ERROR, f"TLS handshake or certificate check failed: {text}"
    if has(NameResolutionError):
        return ErrorKind.DNS_FAILURE, UNRESOLVED_MESSAGE
    if has(ConnectionRefusedError):
        return ErrorKind.CONNECTION_REFUSED, REFUSED_MESSAGE
    if has(ConnectionResetError, BrokenPipeError) or "RemoteDisconnected" in text:
        return ErrorKind.CONNECTION_RESET, "The receiver closed the connection without answering."
    if has(NewConnectionError, ProtocolError, HTTPError, OSError):
        return ErrorKind.CONNECTION_ERROR, f"Could not connect: {text}"
    return ErrorKind.OTHER, f"{type(exc).__name__}: {text}"
