"""Typed settings, read at access time so ``override_settings`` just works.

Every setting is ``WEBHOOKS_<NAME>`` in the host's settings; the defaults live
here and nowhere else. Each value is kept once read (a worker reads a dozen per delivery,
and an unset one costs Django an ``AttributeError`` each time) until the settings change:
a ``setting_changed`` signal, or other settings in force (``override_settings`` puts new
ones in place, and so does deleting a setting with it or with pytest-django's
``settings``, which sends no signal).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from django.conf import settings as django_settings
from django.core.signals import setting_changed

DEFAULT_RETRY_SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 36000)


class Settings:
    def __init__(self) -> None:
        # The settings in force and {name: value} read from them, replaced as one (a
        # thread that read the old pair writes into a dict no longer used).
        self._read: tuple = (None, {})

    def _get(self, name: str, default):
        in_force = django_settings._wrapped
        read_from, values = self._read
        if read_from is not in_force:
            values = {}
            self._read = (in_force, values)
        try:
            return values[name]
        except KeyError:
            value = values[name] = getattr(django_settings, f"WEBHOOKS_{name}", default)
            return value

    def forget(self, **kwargs) -> None:
        """Read every setting again (a ``setting_changed`` receiver)."""
        if kwargs.get("setting", "WEBHOOKS_").startswith("WEBHOOKS_"):
            self._read = (None, {})

    @property
    def TIMEOUT(self) -> float:
        """Seconds to wait for a receiver to connect and answer."""
        return self._get("TIMEOUT", 10.0)

    @property
    def RETRY_SCHEDULE(self) -> Sequence[float]:
        """Seconds to wait before each retry; its length is the number of retries."""
        return self._get("RETRY_SCHEDULE", DEFAULT_RETRY_SCHEDULE)

    @property
    def PLAN_GATE(self) -> str | None:
        """Dotted path of ``(scope) -> bool``: may this customer use webhooks (None: all may)."""
        return self._get("PLAN_GATE", None)

    @property
    def PORTAL_BASE_TEMPLATE(self) -> str:
        """The host's base template the portal's pages extend (it fills ``{% block content %}``)."""
        return self._get("PORTAL_BASE_TEMPLATE", "webhooks/portal/standalone.html")

    @property
    def PORTAL_LINK_MAX_AGE(self) -> float:
        """Seconds a portal magic link can be opened (once) after it is made."""
        return self._get("PORTAL_LINK_MAX_AGE", 600.0)

    @property
    def PORTAL_SESSION_MAX_AGE(self) -> float:
        """Seconds a portal session opened by a magic link lasts."""
        return self._get("PORTAL_SESSION_MAX_AGE", 3600.0)

    @property
    def PORTAL_FRAME_ANCESTORS(self) -> Sequence[str]:
        """Origins (``https://app.example.com``) allowed to show the portal in an iframe,
        besides the portal's own. Empty: the portal's own origin only."""
        return self._get("PORTAL_FRAME_ANCESTORS", ())

    @property
    def WAGTAIL_ADMINS_IN_DJANGO_ADMIN(self) -> bool:
        """With ``webhooks.contrib.wagtail``: the Django admin admits Wagtail's Administrators
        (superusers that Wagtail does not make staff), as the API does."""
        return self._get("WAGTAIL_ADMINS_IN_DJANGO_ADMIN", True)

    @property
    def RETRY_JITTER(self) -> float:
        """Fraction of a retry delay added or removed at random (0.1 = ±10%)."""
        return self._get("RETRY_JITTER", 0.1)

    @property
    def MAX_RETRY_AFTER(self) -> float:
        """The longest ``Retry-After`` (seconds) a receiver may ask for; longer is capped."""
        return self._get("MAX_RETRY_AFTER", 3600.0)

    @property
    def LEASE_SECONDS(self) -> float:
        """How long a claimed delivery belongs to its worker before the sweeper takes it back."""
        return self._get("LEASE_SECONDS", 120.0)

    @property
    def RESPONSE_BODY_LIMIT(self) -> int:
        """Characters of a receiver's answer kept in the attempt log."""
        return self._get("RESPONSE_BODY_LIMIT", 4096)

    @property
    def DISABLE_AFTER(self) -> float | None:
        """Seconds of nothing but failures after which an endpoint is disabled (None: never)."""
        return self._get("DISABLE_AFTER", 5 * 24 * 3600.0)

    @property
    def ALLOWED_NETWORKS(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        """Networks exempt from the SSRF guard, e.g. ``["127.0.0.0/8", "::1/128"]``."""
        return [ipaddress.ip_network(n, strict=False) for n in self._get("ALLOWED_NETWORKS", [])]

    @property
    def ALLOW_HTTP(self) -> bool:
        """Accept plain ``http://`` URLs to any address. Off: http only to addresses in
        ``ALLOWED_NETWORKS`` (a receiver for testing), https everywhere else."""
        return bool(self._get("ALLOW_HTTP", False))

    @property
    def SWEEP_DURATION(self) -> float:
        """Seconds one scheduled sweep keeps polling for due work before it exits."""
        return self._get("SWEEP_DURATION", 50.0)

    @property
    def POLL_INTERVAL(self) -> float:
        """Seconds between two polls of a running sweep."""
        return self._get("POLL_INTERVAL", 1.0)

    @property
    def FAN_OUT_GRACE(self) -> float:
        """Age (seconds) after which an Event not yet fanned out is treated as a lost enqueue."""
        return self._get("FAN_OUT_GRACE", 10.0)

    @property
    def BATCH_SIZE(self) -> int:
        """Deliveries one task claims and sends at most; also new events per fan-out task."""
        return self._get("BATCH_SIZE", 50)

    @property
    def MAX_CONCURRENCY(self) -> int:
        """Requests one task keeps in flight at once when it sends itself (sync mode, tests,
        manual actions); a worker process's sender has ``MAX_IN_FLIGHT``."""
        return self._get("MAX_CONCURRENCY", 8)

    @property
    def MAX_IN_FLIGHT(self) -> int:
        """Requests one worker process keeps in flight at once in its sender, which tasks
        hand their deliveries to and return (``webhooks.sender``); beyond it, tasks wait."""
        return self._get("MAX_IN_FLIGHT", 256)

    @property
    def MAX_CONCURRENCY_PER_ENDPOINT(self) -> int:
        """Requests one worker keeps in flight to one endpoint (the webhook's URL) at once.

        A slow receiver then holds at most this many of ``MAX_CONCURRENCY`` slots, and the
        others keep flowing.
        """
        return self._get("MAX_CONCURRENCY_PER_ENDPOINT", 4)

    @property
    def BROKER_BACKOFF(self) -> float:
        """Seconds after a failed enqueue during which enqueues are skipped at once.

        A down broker then costs one failed call per process per period instead of one
        per save; skipped work is picked up by the sweeper.
        """
        return self._get("BROKER_BACKOFF", 5.0)

    @property
    def SCOPE_RESOLVER(self) -> str:
        """Dotted path of ``f(user) -> scope``: the tenant a user may see.

        A string (a tenant), ``tenancy.ALL_SCOPES`` (None: every tenant) or
        ``tenancy.NO_SCOPE`` (nothing). The default is single-tenant and denies by default.
        """
        return self._get("SCOPE_RESOLVER", "webhooks.tenancy.default_scope_for_user")

    @property
    def SCOPE_CHOICES(self) -> str | None:
        """Dotted path of ``f() -> [(scope, label), …]``: the tenants a superuser may pick
        for a webhook in the admin. None: the scope is typed as free text."""
        return self._get("SCOPE_CHOICES", None)

    @property
    def SECRET_ROTATION_OVERLAP(self) -> float:
        """Seconds the previous signing secret keeps signing after a rotation."""
        return self._get("SECRET_ROTATION_OVERLAP", 24 * 3600.0)

    @property
    def USER_AGENT(self) -> str | None:
        """User-Agent header; None means ``django-webhooks/<version>``."""
        return self._get("USER_AGENT", None)

    @property
    def API_PERMISSION_CLASSES(self) -> Sequence[str]:
        """Dotted paths of the DRF permission classes guarding the REST API.

        Default: the caller needs this app's model permissions, as in the admin."""
        return self._get(
            "API_PERMISSION_CLASSES", ("webhooks.api.permissions.WebhooksModelPermissions",)
        )

    @property
    def MAX_PAYLOAD_BYTES(self) -> int:
        """Largest event ``data`` accepted, in bytes of JSON (UTF-8); bigger is ``InvalidPayload``.

        The payload is copied into the log of every attempt to every webhook, and receivers
        commonly refuse large bodies; 256 KiB is about what hosted webhook services accept.
        """
        return self._get("MAX_PAYLOAD_BYTES", 256 * 1024)

    @property
    def MAX_PAYLOAD_DEPTH(self) -> int:
        """Deepest nesting of lists and objects accepted in event ``data``."""
        return self._get("MAX_PAYLOAD_DEPTH", 32)

    @property
    def MAX_WEBHOOKS_PER_SCOPE(self) -> int | None:
        """Webhooks one tenant (scope) may have, active or not; a new one past it is refused
        (None: no limit). Every one of them gets a delivery of each event it wants; Stripe
        allows 16 endpoints per account, GitHub 20 webhooks per event per repository."""
        return self._get("MAX_WEBHOOKS_PER_SCOPE", 20)

    @property
    def ENCRYPTION_KEYS(self) -> Sequence[str]:
        """Fernet keys encrypting secrets at rest: the first encrypts, all decrypt. Required."""
        return self._get("ENCRYPTION_KEYS", ())

    @property
    def KEEP_SUCCEEDED_DAYS(self) -> float | None:
        """Days a succeeded delivery and its attempts are kept (None: forever)."""
        return self._get("KEEP_SUCCEEDED_DAYS", 30)

    @property
    def KEEP_FAILED_DAYS(self) -> float | None:
        """Days a failed delivery and its attempts are kept (None: forever)."""
        return self._get("KEEP_FAILED_DAYS", 90)

    @property
    def KEEP_EVENTS_DAYS(self) -> float | None:
        """Days an event is kept once none of its deliveries is (None: forever)."""
        return self._get("KEEP_EVENTS_DAYS", 90)

    @property
    def PURGE_BATCH_SIZE(self) -> int:
        """Deliveries (or events) deleted per transaction by the purge."""
        return self._get("PURGE_BATCH_SIZE", 500)

    @property
    def PURGE_TIME_LIMIT(self) -> float:
        """Seconds one scheduled purge runs at most (it goes on at the next one); keep it
        below django-q2's task ``timeout``."""
        return self._get("PURGE_TIME_LIMIT", 60.0)

    @property
    def QUEUE_NAME(self) -> str | None:
        """django-q2 cluster name to enqueue on (None: the default cluster)."""
        return self._get("QUEUE_NAME", None)

    @property
    def NOTIFY_OWNERS(self) -> bool:
        """E-mail a webhook's owner when it is disabled or starts failing."""
        return self._get("NOTIFY_OWNERS", True)

    @property
    def METRICS(self) -> bool:
        """Record Prometheus metrics (when prometheus-client is installed)."""
        return self._get("METRICS", True)

    @property
    def METRICS_TOKEN(self) -> str | None:
        """Bearer token a scrape of the metrics URL must send (None: only people who see
        every tenant, signed in, may read it)."""
        return self._get("METRICS_TOKEN", None)

    @property
    def METRICS_TOP_WEBHOOKS(self) -> int:
        """Webhooks given series of their own in the metrics: the worst this many by due
        backlog and by oldest due delivery (0: none). Bounds the series per scrape."""
        return self._get("METRICS_TOP_WEBHOOKS", 20)

    @property
    def PROPAGATE_TRACE_CONTEXT(self) -> bool:
        """Send the attempt's W3C ``traceparent``/``tracestate`` to receivers (OpenTelemetry).
        Off by default: a trace id tells a customer about the platform's internals."""
        return bool(self._get("PROPAGATE_TRACE_CONTEXT", False))


conf = Settings()
setting_changed.connect(conf.forget, dispatch_uid="webhooks.conf.forget")
