"""System checks with stable ids: ``webhooks.E00x`` wrong settings, ``webhooks.W00x`` risky ones."""

from __future__ import annotations

import numbers

from cryptography.fernet import InvalidToken
from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.db import DatabaseError, connections, router
from django.utils.module_loading import import_string

from . import encryption
from .conf import conf
from .deadline import MARGIN, RECORDING_ALLOWANCE


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
    # A request lasts at most TIMEOUT + MARGIN, then its outcome is recorded: all of it
    # must fit in the lease, or a slow receiver's delivery could be claimed twice.
    longest = (conf.TIMEOUT + MARGIN + RECORDING_ALLOWANCE) if _number(conf.TIMEOUT) else None
    if longest is not None and (not _number(conf.LEASE_SECONDS) or conf.LEASE_SECONDS <= longest):
        errors.append(
            Error(
                f"WEBHOOKS_LEASE_SECONDS must be longer than {longest:g} seconds "
                f"(WEBHOOKS_TIMEOUT + {MARGIN:g} s deadline margin + {RECORDING_ALLOWANCE:g} s "
                "to record the outcome), or a slow receiver's delivery could be claimed and "
                "sent twice.",
                hint=f"For example WEBHOOKS_LEASE_SECONDS = {max(120, 4 * longest):g}.",
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
    for name in ("BATCH_SIZE", "MAX_CONCURRENCY", "MAX_CONCURRENCY_PER_ENDPOINT", "MAX_IN_FLIGHT"):
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
    problem = encryption.keys_problem(conf.ENCRYPTION_KEYS)
    if problem:
        errors.append(
            Error(
                problem + " Webhook secrets (signing secrets, basic-auth passwords, extra "
                "headers) are stored encrypted with them.",
                hint="Add WEBHOOKS_ENCRYPTION_KEYS = [<key>] (from the environment, not the "
                "code). " + encryption.GENERATE_HINT + ". To rotate, put a new key first, "
                "run manage.py webhooks_reencrypt, then remove the old one.",
                id="webhooks.E010",
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
                    id="webhooks.E012",
                )
            )
    batch, limit = conf.PURGE_BATCH_SIZE, conf.PURGE_TIME_LIMIT
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        errors.append(
            Error("WEBHOOKS_PURGE_BATCH_SIZE must be a whole number ≥ 1.", id="webhooks.E013")
        )
    if not _number(limit) or limit <= 0:
        errors.append(
            Error("WEBHOOKS_PURGE_TIME_LIMIT must be a number of seconds > 0.", id="webhooks.E014")
        )
    limit = conf.MAX_WEBHOOKS_PER_SCOPE
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        errors.append(
            Error(
                "WEBHOOKS_MAX_WEBHOOKS_PER_SCOPE must be a whole number ≥ 1, or None for no "
                f"limit; it is {limit!r}.",
                hint="For example WEBHOOKS_MAX_WEBHOOKS_PER_SCOPE = 20.",
                id="webhooks.E015",
            )
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
        if conf.ALLOW_HTTP:
            errors.append(
                Warning(
                    "WEBHOOKS_ALLOW_HTTP lets customers save plain http:// webhook URLs: "
                    "events and their signatures cross the internet unencrypted.",
                    hint="Turn it off in production; a receiver for testing can be reached "
                    "over http through WEBHOOKS_ALLOWED_NETWORKS instead.",
                    id="webhooks.W005",
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
    if q_cluster.get("orm") and not q_cluster.get("broker_class"):
        errors.append(
            Warning(
                "django-q2's ORM broker costs every webhook event a second INSERT (its task "
                "row) after the host's commit.",
                hint="Set Q_CLUSTER['broker_class'] = 'webhooks.broker.OutboxBroker': the "
                "workers then take events from the webhooks' own table.",
                id="webhooks.W003",
            )
        )
    return errors


#: Webhooks whose stored secrets the keys check tries to decrypt.
SECRETS_SAMPLE = 20
UNDECRYPTABLE_HINT = (
    "Put the key that encrypted them back in WEBHOOKS_ENCRYPTION_KEYS, after the new one "
    "(the first key encrypts, every one decrypts); to retire it, run manage.py "
    "webhooks_reencrypt first."
)


@register(Tags.security)
def check_stored_secrets(app_configs=None, **kwargs):
    """The keys decrypt what is stored: a valid but wrong key passes E010 and then every
    delivery of the webhooks it cannot read fails.

    Not tagged ``database``: Django 6.1 runs such checks only with ``--database``, and a
    plain ``manage.py check`` must catch the wrong key (one small query). A warning, not an
    error: an error would stop every management command of the host (runserver,
    qcluster…) over webhooks.
    """
    problem = stored_secrets_problem()
    if problem is None:
        return []
    return [Warning(problem, hint=UNDECRYPTABLE_HINT, id="webhooks.W004")]


def stored_secrets_problem() -> str | None:
    """What is wrong if WEBHOOKS_ENCRYPTION_KEYS cannot decrypt a sample of stored secrets.

    Reads the encrypted columns of ``SECRETS_SAMPLE`` webhooks as stored (nothing is
    decrypted on the way), along the primary key: random uuids, so webhooks of every age.
    Silent when the keys themselves are wrong (E010 says so), before ``migrate`` and when
    the database cannot be reached.
    """
    from .models import Subscription

    if encryption.keys_problem(conf.ENCRYPTION_KEYS):
        return None
    connection = connections[router.db_for_read(Subscription)]
    meta = Subscription._meta
    quote = connection.ops.quote_name
    columns = ", ".join(quote(meta.get_field(name).column) for name in encryption.ENCRYPTED_FIELDS)
    try:
        if meta.db_table not in connection.introspection.table_names():
            return None
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {columns} FROM {quote(meta.db_table)} ORDER BY {quote(meta.pk.column)} "
                f"LIMIT {SECRETS_SAMPLE}"
            )
            rows = cursor.fetchall()
    except DatabaseError:
        return None
    fernet = encryption.multifernet()
    unreadable = sum(1 for row in rows if not all(_decrypts(fernet, value) for value in row))
    if not unreadable:
        return None
    return (
        f"{unreadable} of the {len(rows)} webhooks checked have secrets that no key of "
        "WEBHOOKS_ENCRYPTION_KEYS decrypts: their deliveries cannot be signed and fail."
    )


def _decrypts(fernet, stored) -> bool:
    if not stored or not stored.startswith(encryption.PREFIX):
        return True  # empty, or written before encryption (the migration encrypts it)
    try:
        fernet.decrypt(stored[len(encryption.PREFIX) :].encode("ascii"))
    except (InvalidToken, ValueError):
        return False
    return True


#: What SQLite needs so that a web save waits for a worker's write instead of failing with
#: "database is locked": take the write lock at BEGIN (a deferred transaction that later
#: writes cannot wait for it), wait long enough, and let readers run beside a writer.
SQLITE_OPTIONS = {
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
}
SQLITE_MIN_TIMEOUT = 10


def _sqlite_file(database: dict) -> bool:
    """A SQLite database in a file, which several processes share (not one in memory)."""
    if not database.get("ENGINE", "").endswith("sqlite3"):
        return False
    name = str(database.get("NAME", ""))
    return not (
        name in ("", ":memory:") or "mode=memory" in name or name.startswith("file::memory:")
    )


def _sqlite_request_warnings(alias: str, database: dict, atomic_unsafe: bool) -> list:
    atomic = bool(database.get("ATOMIC_REQUESTS"))
    immediate = (database.get("OPTIONS") or {}).get("transaction_mode") == "IMMEDIATE"
    if atomic and immediate:
        return [
            Warning(
                f"DATABASES[{alias!r}] has ATOMIC_REQUESTS with transaction_mode IMMEDIATE: "
                "every request, a page view included, takes SQLite's write lock at BEGIN "
                "and waits for any other process's write.",
                hint=ATOMIC_UNSAFE_HINT,
                id="webhooks.W006",
            )
        ]
    if not atomic and not atomic_unsafe:
        return [
            Warning(
                f"DATABASES[{alias!r}] is SQLite without ATOMIC_REQUESTS or "
                f"{ATOMIC_UNSAFE_REQUESTS}: a request's saves run in autocommit, so a row "
                "commits before its webhook event is written, and a request that reads then "
                "writes can fail with 'database is locked' beside a worker.",
                hint=ATOMIC_UNSAFE_HINT,
                id="webhooks.W007",
            )
        ]
    return []


def _sqlite_missing(database: dict) -> dict:
    if not _sqlite_file(database):
        return {}  # one process: nothing to wait for
    options = database.get("OPTIONS") or {}
    missing = {}
    if options.get("transaction_mode") != "IMMEDIATE":
        missing["transaction_mode"] = SQLITE_OPTIONS["transaction_mode"]
    timeout = options.get("timeout", 5)
    if not _number(timeout) or timeout < SQLITE_MIN_TIMEOUT:
        missing["timeout"] = SQLITE_OPTIONS["timeout"]
    init = str(options.get("init_command", "")).lower().replace(" ", "")
    if "journal_mode=wal" not in init:
        missing["init_command"] = SQLITE_OPTIONS["init_command"]
    return missing


@register(Tags.compatibility)
def check_sqlite(app_configs=None, **kwargs):
    """SQLite shared by web processes and workers needs three options, or saves fail; and
    a transaction for the requests that write only, or reads wait for every write."""
    return sqlite_errors(
        settings.DATABASES,
        getattr(settings, "Q_CLUSTER", {}),
        getattr(settings, "MIDDLEWARE", None) or [],
    )


ATOMIC_UNSAFE_REQUESTS = "webhooks.middleware.AtomicUnsafeRequestsMiddleware"
ATOMIC_UNSAFE_HINT = (
    f"Set ATOMIC_REQUESTS = False and add {ATOMIC_UNSAFE_REQUESTS!r} as the last entry of "
    "MIDDLEWARE: POST, PUT, PATCH and DELETE requests then run in a transaction, GET and "
    "HEAD in autocommit."
)


def _atomic_unsafe_index(middleware) -> int | None:
    """Where AtomicUnsafeRequestsMiddleware (or a subclass) is in MIDDLEWARE, or None."""
    from .middleware import AtomicUnsafeRequestsMiddleware

    for index, path in enumerate(middleware):
        try:
            found = import_string(path)
        except ImportError:
            continue  # Django reports a middleware it cannot import
        if isinstance(found, type) and issubclass(found, AtomicUnsafeRequestsMiddleware):
            return index
    return None


def sqlite_errors(databases: dict, q_cluster: dict, middleware=()) -> list:
    aliases = {"default"}
    if q_cluster.get("orm"):
        aliases.add(q_cluster["orm"])
    errors = []
    position = _atomic_unsafe_index(middleware)
    if position is not None and position != len(middleware) - 1:
        errors.append(
            Error(
                f"{middleware[position]} is not the last entry of MIDDLEWARE: it runs the "
                "view of a POST itself, so the process_view of the middleware after it "
                "(CSRF protection among them) would not run for that request.",
                hint="Move it to the end of MIDDLEWARE.",
                id="webhooks.E016",
            )
        )
    for alias in sorted(aliases):
        database = databases.get(alias) or {}
        if _sqlite_file(database):
            errors += _sqlite_request_warnings(alias, database, position is not None)
        missing = _sqlite_missing(database)
        if missing:
            wanted = ", ".join(f"{key!r}: {value!r}" for key, value in missing.items())
            errors.append(
                Error(
                    f"DATABASES[{alias!r}] is a SQLite file shared by web requests and webhook "
                    "workers, without the options that make a save wait for a worker's write: "
                    "host saves will fail with 'database is locked'.",
                    hint=f"Add to DATABASES[{alias!r}]['OPTIONS']: {{{wanted}}} "
                    "(Django 5.1+), or use PostgreSQL.",
                    id="webhooks.E011",
                )
            )
    return errors


#: The shortest metrics token accepted: it guards figures about every tenant.
MIN_METRICS_TOKEN_LENGTH = 16


@register(Tags.compatibility)
def check_metrics_settings(app_configs=None, **kwargs):
    """The Prometheus metrics' settings (``webhooks.metrics``)."""
    errors = []
    top = conf.METRICS_TOP_WEBHOOKS
    if not isinstance(top, int) or isinstance(top, bool) or not 0 <= top <= 1000:
        errors.append(
            Error(
                f"WEBHOOKS_METRICS_TOP_WEBHOOKS must be a whole number from 0 to 1000; it is "
                f"{top!r}.",
                hint="It bounds the per-webhook series of each scrape; the default is 20.",
                id="webhooks.E020",
            )
        )
    token = conf.METRICS_TOKEN
    if token is not None and (
        not isinstance(token, str)
        or len(token.strip()) < MIN_METRICS_TOKEN_LENGTH
        or token != token.strip()
    ):
        errors.append(
            Error(
                f"WEBHOOKS_METRICS_TOKEN must be None or a string of at least "
                f"{MIN_METRICS_TOKEN_LENGTH} characters without surrounding spaces.",
                hint="For example python -c 'import secrets; print(secrets.token_urlsafe(32))', "
                "read from the environment.",
                id="webhooks.E021",
            )
        )
    if token and conf.METRICS:
        from .metrics import INSTALL_HINT, available

        if not available():
            errors.append(
                Warning(
                    "WEBHOOKS_METRICS_TOKEN is set but prometheus-client is not installed: "
                    "the metrics URL answers 501.",
                    hint=INSTALL_HINT,
                    id="webhooks.W020",
                )
            )
    return errors


@register(Tags.security)
def check_portal_settings(app_configs=None, **kwargs):
    """The customer portal's settings (``webhooks.portal``)."""
    from .portal.embedding import bad_frame_origins

    errors = []
    bad = bad_frame_origins()
    if bad:
        errors.append(
            Error(
                f"WEBHOOKS_PORTAL_FRAME_ANCESTORS holds what is not an origin: {bad!r}; "
                "these are left out of the portal's frame-ancestors.",
                hint="List origins such as 'https://app.example.com' or "
                "'https://*.example.com:8443', without path, spaces, quotes or ';'.",
                id="webhooks.E022",
            )
        )
    for name in ("PORTAL_LINK_MAX_AGE", "PORTAL_SESSION_MAX_AGE"):
        value = getattr(conf, name)
        if not _number(value) or not value > 0:
            errors.append(
                Error(
                    f"WEBHOOKS_{name} must be a number of seconds > 0; it is {value!r}.",
                    id="webhooks.E023",
                )
            )
    return errors
