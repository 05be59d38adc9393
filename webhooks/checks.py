"""System checks with stable ids: ``webhooks.E00x`` wrong settings, ``webhooks.W00x`` risky ones."""

from __future__ import annotations

import numbers

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.utils.module_loading import import_string

from .conf import conf


def _number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


@register(Tags.compatibility)
def check_settings(app_configs=None, **kwargs):
    errors = []
    if not _number(conf.TIMEOUT) or conf.TIMEOUT <= 0:
        errors.append(
            Error(
                "WEBHOOKS_TIMEOUT must be a positive number of seconds.",
                hint="For example WEBHOOKS_TIMEOUT = 10.",
                id="webhooks.E001",
            )
        )
    schedule = conf.RETRY_SCHEDULE
    if not isinstance(schedule, list | tuple) or not all(_number(s) and s >= 0 for s in schedule):
        errors.append(
            Error(
                "WEBHOOKS_RETRY_SCHEDULE must be a list of non-negative numbers of seconds.",
                hint="For example WEBHOOKS_RETRY_SCHEDULE = [5, 300, 1800, 7200].",
                id="webhooks.E002",
            )
        )
    try:
        conf.ALLOWED_NETWORKS  # noqa: B018 - parsing is the check
    except (TypeError, ValueError) as exc:
        errors.append(
            Error(
                f"WEBHOOKS_ALLOWED_NETWORKS has an entry that is not a network: {exc}.",
                hint='Use CIDR strings, e.g. ["127.0.0.0/8", "::1/128"].',
                id="webhooks.E003",
            )
        )
    if _number(conf.TIMEOUT) and (
        not _number(conf.LEASE_SECONDS) or conf.LEASE_SECONDS <= conf.TIMEOUT
    ):
        errors.append(
            Error(
                "WEBHOOKS_LEASE_SECONDS must be longer than WEBHOOKS_TIMEOUT, or a slow "
                "receiver's delivery could be claimed and sent twice.",
                id="webhooks.E004",
            )
        )
    if not isinstance(conf.RESPONSE_BODY_LIMIT, int) or conf.RESPONSE_BODY_LIMIT < 0:
        errors.append(
            Error("WEBHOOKS_RESPONSE_BODY_LIMIT must be a whole number ≥ 0.", id="webhooks.E005")
        )
    try:
        import_string(conf.SCOPE_RESOLVER)
    except ImportError as exc:
        errors.append(
            Error(
                f"WEBHOOKS_SCOPE_RESOLVER cannot be imported: {exc}.",
                hint="Give the dotted path of a function f(user) -> scope or None.",
                id="webhooks.E006",
            )
        )
    for name in ("BATCH_SIZE", "MAX_CONCURRENCY", "MAX_CONCURRENCY_PER_ENDPOINT"):
        value = getattr(conf, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            errors.append(Error(f"WEBHOOKS_{name} must be a whole number ≥ 1.", id="webhooks.E007"))
    if not _number(conf.BROKER_BACKOFF) or conf.BROKER_BACKOFF < 0:
        errors.append(
            Error("WEBHOOKS_BROKER_BACKOFF must be a number of seconds ≥ 0.", id="webhooks.E008")
        )
    dotted = [("SCOPE_CHOICES", conf.SCOPE_CHOICES)] if conf.SCOPE_CHOICES else []
    dotted += [("API_PERMISSION_CLASSES", path) for path in conf.API_PERMISSION_CLASSES]
    for name, path in dotted:
        try:
            import_string(path)
        except ImportError as exc:
            errors.append(
                Error(
                    f"WEBHOOKS_{name} names something that cannot be imported: {exc}.",
                    hint="Give dotted paths, e.g. 'myproject.tenancy.organisation_choices'.",
                    id="webhooks.E009",
                )
            )
    for name in ("KEEP_SUCCEEDED_DAYS", "KEEP_FAILED_DAYS", "KEEP_EVENTS_DAYS"):
        days = getattr(conf, name)
        if days is not None and (not _number(days) or days <= 0):
            errors.append(
                Error(
                    f"WEBHOOKS_{name} must be a number of days > 0, or None to keep forever; "
                    f"it is {days!r}.",
                    hint=f"For example WEBHOOKS_{name} = 90.",
                    id="webhooks.E010",
                )
            )
    batch, limit = conf.PURGE_BATCH_SIZE, conf.PURGE_TIME_LIMIT
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        errors.append(
            Error("WEBHOOKS_PURGE_BATCH_SIZE must be a whole number ≥ 1.", id="webhooks.E011")
        )
    if not _number(limit) or limit <= 0:
        errors.append(
            Error("WEBHOOKS_PURGE_TIME_LIMIT must be a number of seconds > 0.", id="webhooks.E011")
        )
    if not settings.DEBUG and not errors:
        private = [str(n) for n in conf.ALLOWED_NETWORKS if not n.is_global]
        if private:
            errors.append(
                Warning(
                    "WEBHOOKS_ALLOWED_NETWORKS lets webhooks reach internal networks "
                    f"({', '.join(private)}).",
                    hint="Customers choose webhook URLs: in production allow only what you must.",
                    id="webhooks.W001",
                )
            )
    q_cluster = getattr(settings, "Q_CLUSTER", {})
    if q_cluster.get("max_attempts", 0) != 1 or not q_cluster.get("ack_failures", False):
        errors.append(
            Warning(
                "django-q2 may re-run failed webhook tasks behind the app's back.",
                hint="Set Q_CLUSTER['max_attempts'] = 1 and Q_CLUSTER['ack_failures'] = True: "
                "webhooks retries deliveries itself.",
                id="webhooks.W002",
            )
        )
    return errors
