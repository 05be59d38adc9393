"""Where webhooks may be sent: target URL validation and an SSRF-safe connection.

A customer chooses the URL, so without a guard a webhook could reach the host's
own network (a database admin page, the cloud metadata service at
169.254.169.254). Targets are checked when a subscription is saved, and again at
connect time on the address actually dialled, so a name that re-resolves to a
private address later (DNS rebinding) is still refused.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from urllib3 import PoolManager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util import connection as urllib3_connection

from . import deadline
from .conf import conf

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
#: Decimal, octal or hex numbers, dotted or not: what ``inet_aton`` reads as an address.
_NUMBERS = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}$", re.IGNORECASE)


#: Seconds saving a webhook waits for its host name to resolve (a person is waiting).
VALIDATION_RESOLVE_SECONDS = 5.0


class BlockedTargetError(Exception):
    """The target resolved to an address webhooks may not be sent to."""


class ResolutionTimeout(socket.gaierror):
    """The host name was not resolved in time: the name servers of a receiver's domain are
    the receiver's too, and may never answer (the system's resolver retries for up to
    30 s and more, on its own clock)."""

    def __init__(self, host: str, seconds: float) -> None:
        super().__init__(socket.EAI_AGAIN, f"{host} was not resolved within {seconds:.3g} s")


def refusal_reason(ip: IPAddress) -> str | None:
    """Why this address is refused, in plain words, or None if it is allowed."""
    if allowed_network(ip):
        return None
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return "an IPv4-mapped IPv6 address"
        embedded = ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None and refusal_reason(embedded):
            return "an IPv6 tunnel address wrapping a non-public IPv4 address"
    if ip.is_unspecified:
        return "the unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address (such as the cloud metadata service)"
    if ip.is_multicast:
        return "a multicast address"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
        return "a carrier-grade NAT (shared) address"
    if ip.is_reserved:
        return "a reserved address"
    if ip.is_private:
        return "a private network address"
    if not ip.is_global:
        return "a reserved address"
    return None


def resolve(host: str, port: int, within: float | None = None) -> list[IPAddress]:
    """Every address ``host`` resolves to (raises ``socket.gaierror`` if none), within
    ``within`` seconds if given (else ``ResolutionTimeout``)."""
    if within is not None and not _is_address(host):
        return _resolve_within(host, port, within)
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: list[IPAddress] = []
    for *_, sockaddr in infos:
        ip = ipaddress.ip_address(sockaddr[0].split("%", 1)[0])
        if ip not in seen:
            seen.append(ip)
    return seen


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _resolve_within(host: str, port: int, seconds: float) -> list[IPAddress]:
    """``resolve`` in a thread of its own, waited for ``seconds`` at most. A lookup cannot
    be interrupted: one that overruns ends on its own in the background (a daemon thread),
    and the caller goes on at once."""
    answer: list = []
    done = threading.Event()

    def lookup() -> None:
        try:
            answer.append(resolve(host, port))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            answer.append(exc)
        finally:
            done.set()

    threading.Thread(target=lookup, name="webhooks-dns", daemon=True).start()
    if not done.wait(seconds):
        raise ResolutionTimeout(host, seconds)
    if isinstance(answer[0], BaseException):
        raise answer[0]
    return answer[0]


def check_addresses(host: str, addresses: list[IPAddress]) -> None:
    for ip in addresses:
        reason = refusal_reason(ip)
        if reason:
            where = f"{host} is" if host.strip("[]") == str(ip) else f"{host} resolves to {ip},"
            raise BlockedTargetError(
                f"{where} {reason}; webhooks may only be sent to public internet addresses."
            )


def numeric_host_problem(host: str) -> str | None:
    """Why a host written as one number (``3232235777``, ``0x7f000001``, ``127.1``) is
    refused: resolvers read it as an IPv4 address, so the URL hides where it goes."""
    try:
        ipaddress.ip_address(host)
        return None  # a dotted IPv4 or an IPv6 address: what it says is where it goes
    except ValueError:
        pass
    if not _NUMBERS.match(host):
        return None  # a host name
    try:
        packed = socket.inet_aton(host)
    except OSError:
        return None  # a host name
    return (
        f"The host “{host}” is an IP address written as one number "
        f"({ipaddress.IPv4Address(packed)}); such hosts are not accepted, because they hide "
        "where the webhook goes. Use a host name, or the address written as four numbers "
        "with dots."
    )


def allowed_network(ip: IPAddress) -> bool:
    return any(ip in network for network in conf.ALLOWED_NETWORKS)


def validate_target_url(url: str) -> list[IPAddress]:
    """Raise a ``ValidationError`` a person can act on if ``url`` may not receive webhooks;
    return the addresses its host resolves to."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValidationError(f"This is not a valid URL: {exc}.", code="invalid_url") from exc
    if parts.scheme not in ("http", "https"):
        if not parts.scheme:
            raise ValidationError(
                "Enter the whole URL, starting with https://, e.g. https://example.com/webhooks.",
                code="scheme",
            )
        raise ValidationError(
            f"“{parts.scheme}:” URLs are not accepted: a webhook URL starts with https:// "
            "(or http:// where the platform allows it).",
            code="scheme",
        )
    if parts.username is not None or parts.password is not None:
        raise ValidationError(
            "Remove the user name and password from the URL and use the basic-auth fields instead.",
            code="credentials_in_url",
        )
    if not parts.hostname:
        raise ValidationError("The URL has no host name.", code="no_host")
    problem = numeric_host_problem(parts.hostname)
    if problem:
        raise ValidationError(problem, code="numeric_host")
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = resolve(parts.hostname, port, within=VALIDATION_RESOLVE_SECONDS)
    except ResolutionTimeout as exc:
        raise ValidationError(
            f"The host name “{parts.hostname}” did not resolve within "
            f"{VALIDATION_RESOLVE_SECONDS:g} seconds: its name servers did not answer. "
            "Try again in a moment, and check the name for typos.",
            code="dns_timeout",
        ) from exc
    except (socket.gaierror, UnicodeError) as exc:
        raise ValidationError(
            f"The host name “{parts.hostname}” could not be resolved; check it for typos.",
            code="dns_failure",
        ) from exc
    try:
        check_addresses(parts.hostname, addresses)
    except BlockedTargetError as exc:
        raise ValidationError(str(exc), code="blocked_target") from exc
    # As Stripe in live mode: events and their signatures never cross the internet in
    # clear. Plain http is for receivers the platform allows for testing (a local one).
    if parts.scheme == "http" and not conf.ALLOW_HTTP:
        if not all(allowed_network(ip) for ip in addresses):
            raise ValidationError(
                "Use an https:// URL: over plain http:// the events could be read or changed "
                "on the way. http:// is accepted only for addresses the platform allows for "
                "testing (WEBHOOKS_ALLOWED_NETWORKS).",
                code="plain_http",
            )
    return addresses


def _guarded_new_conn(self) -> socket.socket:
    """urllib3's ``_new_conn``, dialling only addresses that pass the guard. Resolving the
    name counts against the request's total deadline, as connecting does."""
    current = deadline.current()
    try:
        within = current.remaining() if current is not None else None
        addresses = resolve(self._dns_host, self.port, within=within)
    except socket.gaierror as exc:
        raise NameResolutionError(self.host, self, exc) from exc
    check_addresses(self.host, addresses)
    timeout = self.timeout
    if current is not None:  # connecting counts against the request's total deadline
        remaining = current.remaining()
        if remaining <= 0:
            raise ConnectTimeoutError(self, f"No time left to connect to {self.host}.")
        timeout = min(timeout, remaining) if isinstance(timeout, int | float) else remaining
    last_error: OSError | None = None
    for ip in addresses:
        try:
            sock = urllib3_connection.create_connection(
                (str(ip), self.port),
                timeout,
                source_address=self.source_address,
                socket_options=self.socket_options,
            )
        except TimeoutError as exc:
            raise ConnectTimeoutError(
                self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})"
            ) from exc
        except OSError as exc:
            last_error = exc
        else:
            if current is not None:  # from the TLS handshake on, until the request ends
                current.watch(sock)
            return sock
    raise NewConnectionError(
        self, f"Failed to establish a new connection: {last_error}"
    ) from last_error


def _watched_request(base):
    """``request`` of ``base`` that puts a kept-alive connection's socket under this
    request's total deadline: the deadline belongs to the request. (A new connection's
    socket is watched from when it connects; an HTTPS one, connected before its request,
    is watched again here, which costs one more descriptor.)"""

    def request(self, *args, **kwargs):
        current = deadline.current()
        if current is not None and self.sock is not None:
            current.watch(self.sock)
        return base.request(self, *args, **kwargs)

    return request


class GuardedHTTPConnection(HTTPConnection):
    _new_conn = _guarded_new_conn
    request = _watched_request(HTTPConnection)


class GuardedHTTPSConnection(HTTPSConnection):
    _new_conn = _guarded_new_conn
    request = _watched_request(HTTPSConnection)


class GuardedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = GuardedHTTPConnection


class GuardedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = GuardedHTTPSConnection


def guarded_pool_manager(**kwargs) -> PoolManager:
    """A urllib3 pool manager whose every connection goes through the SSRF guard."""
    manager = PoolManager(**kwargs)
    manager.pool_classes_by_scheme = {
        "http": GuardedHTTPConnectionPool,
        "https": GuardedHTTPSConnectionPool,
    }
    return manager
