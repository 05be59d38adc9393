"""The tables: what can happen, who wants it, what happened, what is owed, what was tried,
and which background processes were last seen alive."""

from __future__ import annotations

import hashlib
import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from . import signing
from .encryption import EncryptedJSONField, EncryptedTextField
from .ids import uuid7


class EventType(models.Model):
    """A kind of event the host can raise. Rows are synced from the code registry."""

    name = models.CharField(max_length=100, unique=True)
    category = models.CharField(max_length=100, blank=True)
    description = models.TextField(blank=True)
    example_payload = models.JSONField(default=dict, blank=True)
    schema = models.JSONField(null=True, blank=True)
    is_active = models.BooleanField(
        default=True, help_text=_("Inactive types are recorded but delivered to nobody.")
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["category", "name"]
        verbose_name = _("event type")

    def __str__(self) -> str:
        return self.name


class Subscription(models.Model):
    """A customer's webhook: a callback URL and the events it wants."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="webhook_subscriptions",
    )
    scope = models.CharField(
        max_length=100,
        blank=True,
        db_index=True,
        help_text=_("The tenant whose events this webhook receives."),
    )
    description = models.CharField(max_length=200, blank=True)
    url = models.URLField(max_length=2000)
    event_types = models.ManyToManyField(EventType, blank=True, related_name="subscriptions")
    all_events = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=300, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    # Secrets are encrypted at rest (WEBHOOKS_ENCRYPTION_KEYS) and cannot be filtered on.
    secret = EncryptedTextField(default=signing.generate_secret, editable=False)
    previous_secret = EncryptedTextField(blank=True, editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    basic_auth_username = models.CharField(max_length=150, blank=True)
    basic_auth_password = EncryptedTextField(blank=True)
    headers = EncryptedJSONField(default=dict, blank=True)
    sensitive_headers = models.JSONField(
        default=list,
        blank=True,
        help_text=_(
            "Names of extra headers whose values are secrets: write-only, like those "
            "named like a credential (Authorization, *token*, *key*, *secret*, cookie…)."
        ),
    )
    # At most this many messages per second to this webhook (None: no limit), shared by
    # every worker on every host through ``RateLimitSlot`` (``webhooks.ratelimit``).
    rate_limit = models.PositiveIntegerField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0, editable=False)
    failing_since = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("webhook")
        # The lists' order (newest first, then the id), read backwards (migration 0015).
        indexes = [models.Index(fields=["created_at", "id"], name="webhooks_subscription_created")]

    def __str__(self) -> str:
        return self.description or self.url

    def clean(self) -> None:
        from .validation import validate_subscription

        validate_subscription(self)

    def is_sensitive_header(self, name: str) -> bool:
        """Whether the value of extra header ``name`` is a secret (write-only, redacted)."""
        from .validation import is_sensitive_header_name

        marked = self.sensitive_headers or []
        if not isinstance(marked, list) or not all(isinstance(n, str) for n in marked):
            return True  # an unreadable marking (not written by the forms): hide every value
        name = str(name)
        return name.lower() in {n.lower() for n in marked} or is_sensitive_header_name(name)

    def sensitive_header_names(self) -> list[str]:
        headers = self.headers
        if not isinstance(headers, dict):  # unreadable or not an object: nothing is sent
            return []
        return [name for name in headers if self.is_sensitive_header(name)]

    def signing_secrets(self, now=None) -> list[str]:
        """The secrets signing a request now: the current one, and the previous while rotating."""
        now = now or timezone.now()
        secrets = [self.secret]
        if (
            self.previous_secret
            and self.previous_secret_expires_at
            and self.previous_secret_expires_at > now
        ):
            secrets.append(self.previous_secret)
        return secrets


class RateLimitSlot(models.Model):
    """The shared clock of a rate-limited webhook: when its next message may go.

    ``next_at`` is the "theoretical arrival time" of the generic cell rate algorithm
    (``webhooks.ratelimit``). A row of its own, not a field of the webhook, so that saving
    the webhook's settings never writes it back, and taking it locks nothing else.
    """

    subscription = models.OneToOneField(
        Subscription, primary_key=True, on_delete=models.CASCADE, related_name="+"
    )
    next_at = models.DateTimeField()
    # The turn given last to a delivery postponed by the limit: the end of its waiting line.
    queued_until = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.subscription_id} next at {self.next_at:%H:%M:%S.%f}"


class Event(models.Model):
    """One occurrence, its payload frozen when it happened. Written in the host's transaction."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    type = models.CharField(max_length=100)  # indexed below
    data = models.JSONField()
    scope = models.CharField(max_length=100, blank=True)
    source_model = models.CharField(max_length=100, blank=True)
    source_id = models.CharField(max_length=100, blank=True)
    occurred_at = models.DateTimeField(default=timezone.now, db_index=True)
    fanned_out_at = models.DateTimeField(null=True, blank=True)
    # Handed to a worker by the outbox broker (webhooks.broker) until then; after that it
    # is handed out again, so a worker killed mid-task loses nothing.
    claimed_until = models.DateTimeField(null=True, blank=True, editable=False)
    # The W3C trace context of the span that wrote the event (``traceparent``, then
    # ``,tracestate`` if any), for the worker's spans to link to; NULL when the host was
    # not tracing (``webhooks.tracing``). Never sent to receivers unless the operator opts in.
    trace_context = models.CharField(max_length=600, null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-occurred_at"]
        indexes = [
            # The outbox broker's poll and the sweeper's "lost enqueue" query: events never
            # fanned out, oldest first.
            models.Index(
                fields=["occurred_at"],
                condition=models.Q(fanned_out_at__isnull=True),
                name="webhooks_event_pending_fanout",
            ),
            # A tenant's events, newest first (the API): one index for the scope and its
            # order, instead of an index on scope alone (the same cost per INSERT).
            models.Index(fields=["scope", "occurred_at"], name="webhooks_event_scope"),
            # The filters by type. Declared here rather than with ``db_index=True``, which on
            # PostgreSQL adds a ``varchar_pattern_ops`` twin for ``LIKE 'x%'`` that nothing
            # asks of a type: every event INSERT, in the host's transaction, wrote both
            # (migration 0017).
            models.Index(fields=["type"], name="webhooks_event_type_94169249"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.id}"


class Delivery(models.Model):
    """One event owed to one subscription."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    # No index of its own: ``webhooks_one_delivery`` (event, subscription) starts with it.
    event = models.ForeignKey(
        Event, on_delete=models.CASCADE, related_name="deliveries", db_index=False
    )
    # No database constraint, and nothing done here when the webhook goes: a busy webhook
    # is deleted at once and its log after it, in the background (``webhooks.removal``).
    # Meanwhile its rows point at nothing; every page and query joins or looks up the
    # webhook, so they are out of sight, and nothing claims them (``claim_due``). No index
    # of its own either: the indexes below that start with it serve every lookup by it.
    subscription = models.ForeignKey(
        Subscription,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="deliveries",
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    attempt_count = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, default=timezone.now)
    # A claim: who may send this delivery now, and until when.
    lease_token = models.UUIDField(null=True, blank=True, editable=False)
    leased_until = models.DateTimeField(null=True, blank=True, editable=False)
    # A manual attempt someone asked for (resend, recover, test event), until it is made.
    resend_requested_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = _("deliveries")
        constraints = [
            models.UniqueConstraint(fields=["event", "subscription"], name="webhooks_one_delivery"),
        ]
        indexes = [
            # The claim query: pending deliveries that are due, soonest first.
            models.Index(fields=["status", "next_attempt_at"], name="webhooks_delivery_due"),
            # A webhook's log and health figures: its deliveries by time, with their status
            # in the index so the 24 h / 7 day counts need not visit the rows.
            models.Index(
                fields=["subscription", "-created_at", "status"], name="webhooks_delivery_health"
            ),
            # A webhook's backlog (webhooks.stats): its pending deliveries only, so the
            # index stays as small as the backlog and counting it never reads finished rows.
            # ``status`` is a column too, though constant here: only then does SQLite see
            # that the index covers the count (else it reads every row of the webhook
            # through ``webhooks_delivery_attempted``: 80 ms at 100,000 deliveries).
            models.Index(
                fields=["subscription", "next_attempt_at", "status"],
                condition=models.Q(status="pending"),
                name="webhooks_delivery_pending",
            ),
            # A webhook's attempts in a window (webhooks.stats): every attempt of a delivery
            # is at or before its ``last_attempt_at``, so the attempts since T are among its
            # deliveries attempted since T — found here, without reading older ones. With
            # ``id``, the join to their attempts reads this index alone (SQLite's rows are
            # found by rowid, not by this table's primary key).
            models.Index(
                fields=["subscription", "last_attempt_at", "id"],
                name="webhooks_delivery_attempted",
            ),
            # The logs' "failed" filter (admin, portal, API), newest first. Failures are a
            # few per cent of the log: without it, a page of 50 reads ~2,500 deliveries back
            # through ``created_at`` and the admin's bounded count 500,000. Partial, so it is
            # written only when a delivery gives up; ``status`` is a column too, though
            # constant, for SQLite to choose it (an equality) over ``webhooks_delivery_due``.
            models.Index(
                fields=["status", "-created_at"],
                condition=models.Q(status="failed"),
                name="webhooks_delivery_failed",
            ),
            # The sweeper's "resends asked for" query: few rows, so a partial index.
            models.Index(
                fields=["resend_requested_at"],
                condition=models.Q(resend_requested_at__isnull=False),
                name="webhooks_delivery_resend",
            ),
        ]

    def __str__(self) -> str:
        try:
            webhook = self.subscription
        except Subscription.DoesNotExist:  # deleted, its log not yet (``webhooks.removal``)
            webhook = f"deleted webhook {self.subscription_id}"
        return f"{self.event.type} → {webhook}"

    @property
    def webhook_id(self) -> str:
        """The Standard Webhooks message id: the same on every try of this event to this webhook."""
        return f"msg_{self.id.hex}"


class DeliveryAttempt(models.Model):
    """One HTTP request and what came back."""

    class Trigger(models.TextChoices):
        AUTOMATIC = "automatic", _("Automatic")
        MANUAL = "manual", _("Manual")

    class ErrorKind(models.TextChoices):
        NONE = "", _("None")
        TIMEOUT = "timeout", _("Timed out")
        CONNECTION_REFUSED = "connection_refused", _("Connection refused")
        CONNECTION_RESET = "connection_reset", _("Connection reset")
        CONNECTION_ERROR = "connection_error", _("Connection failed")
        DNS_FAILURE = "dns_failure", _("Host name could not be resolved")
        TLS_ERROR = "tls_error", _("TLS/certificate error")
        BLOCKED_TARGET = "blocked_target", _("Target address not allowed")
        REDIRECT = "redirect", _("Redirect (not followed)")
        HTTP_4XX = "http_4xx", _("HTTP 4xx from receiver")
        HTTP_5XX = "http_5xx", _("HTTP 5xx from receiver")
        HTTP_OTHER = "http_other", _("Unexpected HTTP status")
        INVALID_RESPONSE = "invalid_response", _("Invalid HTTP response")
        # Nothing was sent: what is stored for the webhook cannot make a request.
        UNDECRYPTABLE = "undecryptable", _("Webhook secret cannot be decrypted")
        INVALID_SETTINGS = "invalid_settings", _("Webhook settings cannot be sent")
        OTHER = "other", _("Other error")

    # Indexed by ``webhooks_attempt_window`` and ``webhooks_attempt_number`` (both start with
    # it), not by an index of its own: one index fewer to write per attempt.
    delivery = models.ForeignKey(
        Delivery, on_delete=models.CASCADE, related_name="attempts", db_index=False
    )
    number = models.PositiveIntegerField()
    trigger = models.CharField(max_length=20, choices=Trigger.choices, default=Trigger.AUTOMATIC)
    request_url = models.URLField(max_length=2000)
    request_headers = models.JSONField(default=dict)
    # The body is the event's envelope, which the Event row already holds: it is rebuilt
    # (``request_body``) rather than copied into every attempt; the digest proves the
    # rebuilt bytes are the ones that were signed and sent.
    request_body_sha256 = models.CharField(max_length=64, blank=True, editable=False)
    response_status_code = models.PositiveIntegerField(null=True, blank=True)
    response_headers = models.JSONField(default=dict, blank=True)
    response_body = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    succeeded = models.BooleanField(default=False)
    error_kind = models.CharField(max_length=30, choices=ErrorKind.choices, blank=True)
    error_message = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [
            models.UniqueConstraint(fields=["delivery", "number"], name="webhooks_attempt_number"),
        ]
        indexes = [
            # A webhook's figures over a window (webhooks.stats): each delivery's attempts
            # since T, with what the counts read, so they come from this index alone, not
            # from the attempt rows (which hold headers and bodies): 280 → 110 ms for a
            # week of 100,000 attempts on SQLite. It replaces the plain index on ``delivery``.
            models.Index(
                fields=["delivery", "created_at", "succeeded"], name="webhooks_attempt_window"
            ),
        ]

    def __str__(self) -> str:
        what = f"HTTP {self.response_status_code}" if self.response_status_code else None
        return f"#{self.number} {what or self.get_error_kind_display()}"

    @staticmethod
    def digest(body: bytes) -> str:
        return hashlib.sha256(body).hexdigest()

    @property
    def request_body(self) -> str:
        """The exact body this attempt POSTed, rebuilt from its event."""
        from .delivery import envelope

        return envelope(self.delivery).decode()

    @property
    def request_body_verified(self) -> bool | None:
        """Whether the rebuilt body is byte for byte the one sent (None: no digest kept)."""
        if not self.request_body_sha256:
            return None
        return self.digest(self.request_body.encode()) == self.request_body_sha256


class HealthHour(models.Model):
    """A webhook's attempts in one hour (UTC), and how many succeeded: what its 24-hour and
    7-day success rates are summed from (``webhooks.health_hours``), kept for the last
    ``health_hours.KEPT`` only."""

    # Deleted with its webhook (by Django), but not constrained in the database: a worker
    # may record an outcome of a webhook deleted a moment before (its delivery not yet
    # deleted, ``webhooks.removal``), and that must not fail the group of outcomes it is
    # recorded with. Such an hour is read by nobody and goes with the old hours.
    subscription = models.ForeignKey(
        Subscription,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    hour = models.DateTimeField()  # its start
    attempts = models.IntegerField(default=0)
    succeeded = models.IntegerField(default=0)

    class Meta:
        constraints = [
            # Also the index the figures are read through (a webhook's hours, in order).
            models.UniqueConstraint(fields=["subscription", "hour"], name="webhooks_health_hour"),
        ]

    def __str__(self) -> str:
        return f"{self.succeeded}/{self.attempts} at {self.hour:%Y-%m-%d %H}:00"


class DeletedWebhook(models.Model):
    """A webhook deleted moments ago whose delivery log is still being deleted
    (``webhooks.removal``): by a task at once, and again by the hourly purge, which forgets
    the webhook once its log is empty and no fan-out begun before could still add to it."""

    subscription_id = models.UUIDField(primary_key=True)
    deleted_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"webhook {self.subscription_id} deleted {self.deleted_at:%Y-%m-%d %H:%M}"


class Heartbeat(models.Model):
    """When a background process was last seen working: ``sweeper`` (the last sweep that
    ran to its end), ``worker:<host>:<pid>`` (the last task a worker process ran).

    Written at most every ``heartbeat.EVERY`` seconds per process, read by
    ``webhooks_health`` and the health URL; worker rows of processes long gone are pruned.
    """

    key = models.CharField(max_length=200, unique=True)
    seen_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.key} at {self.seen_at:%Y-%m-%d %H:%M:%S}"


class PortalLinkUse(models.Model):
    """A portal magic link that was opened: its nonce, so the link cannot be opened twice.

    Kept until the link would have expired anyway (the purge deletes older rows).
    """

    nonce = models.CharField(max_length=64, unique=True)
    used_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"portal link {self.nonce[:8]}… used {self.used_at:%Y-%m-%d %H:%M}"
