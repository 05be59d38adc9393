"""Settings of the example assessment platform.

Configuration comes from the environment: ``DATABASE_URL`` (default SQLite) and
``REDIS_URL`` (default: django-q2's ORM broker, nothing else to run).
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()

DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env.str("SECRET_KEY", default="example-project-not-secret")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "webhooks",
    "example_project.organisations",
    "example_project.authoring",
    "example_project.testing",
    "example_project.learning",
    "example_project.store",
    "example_project.demo",
    "example_project.demo_receiver",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: POST/PUT/PATCH/DELETE views run in a transaction (a save and its events commit
    # together); page views run in autocommit, so on SQLite they never wait for the write
    # lock. Used instead of ATOMIC_REQUESTS (webhooks.W006/W007 on SQLite).
    "webhooks.middleware.AtomicUnsafeRequestsMiddleware",
]

ROOT_URLCONF = "example_project.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "example_project" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]
WSGI_APPLICATION = "example_project.wsgi.application"

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'example.sqlite3'}"),
}
# With 0, an idle ORM-broker cluster opens a new connection per poll.
DATABASES["default"].setdefault("CONN_MAX_AGE", 60)
# A request's saves and the Events they raise commit together: not ATOMIC_REQUESTS (on
# SQLite every request would take the write lock) but AtomicUnsafeRequestsMiddleware above.
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web server and workers share one file: take the write lock at BEGIN and wait for it
    # instead of failing with "database is locked"; WAL lets readers run beside a writer.
    # (webhooks.E011 names these if they are missing.)
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    DATABASES["default"]["CONN_MAX_AGE"] = 0
elif DATABASES["default"]["ENGINE"] == "django.db.backends.mysql":
    # MariaDB/MySQL (mysql://user:pass@host/name): full Unicode (Django's default "utf8" is
    # the 3-byte utf8mb3), and binary collation so tenant scopes, event type names and
    # lookups compare exactly as on PostgreSQL and SQLite (the default collation is
    # case-insensitive: scope "acme" would match "ACME").
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"charset": "utf8mb4", "init_command": "SET collation_connection = 'utf8mb4_bin'"}
    )
    DATABASES["default"].setdefault("TEST", {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_bin"})

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_TZ = True
STATIC_URL = "static/"
# The customers' sign-in (the admin has its own at /admin/login/): the portal sends
# visitors who are not signed in here, and back to where they were going.
LOGIN_URL = "login"
# The demo's e-mails (a webhook switched off or failing, to its owner) go to the console
# of `make run`; a real platform sets EMAIL_BACKEND (and EMAIL_HOST …) for its mail server.
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
LOGIN_REDIRECT_URL = "webhooks_portal:webhooks"
LOGOUT_REDIRECT_URL = "login"

REDIS_URL = env.str("REDIS_URL", default="")

# django-q2 is the worker pool and the clock; the webhooks app owns retries.
Q_CLUSTER = {
    "name": env.str("Q_NAME", default="webhooks"),
    # One worker is usually busy with the sweep (it polls for due retries for ~50 s a minute).
    "workers": env.int("Q_WORKERS", default=4),
    "timeout": 90,  # per task; > HTTP timeout and > one sweep
    "retry": 120,  # re-delivery of an unacknowledged task; must exceed timeout
    "max_attempts": 1,  # never re-run a failed task: the app retries deliveries itself
    "ack_failures": True,
    "queue_limit": 4,
    "save_limit": -1,  # keep no successful task results (failures are still kept)
    "catch_up": False,
    "poll": 0.1,
    "label": "Task queue",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
    # The workers take new events from the webhooks' outbox table itself, so an event costs
    # the host one INSERT (django-q2's own ORM broker would add its task row after commit).
    # They poll every `poll` seconds when idle: 0.1 s keeps commit → delivery around 50-70 ms
    # on SQLite for two cheap indexed reads per poll.
    Q_CLUSTER["broker_class"] = "webhooks.broker.OutboxBroker"

# The demo receiver lives on this machine; real deployments allow nothing private.
WEBHOOKS_ALLOWED_NETWORKS = env.list(
    "WEBHOOKS_ALLOWED_NETWORKS", default=["127.0.0.0/8", "::1/128"]
)
# Webhook secrets are encrypted at rest with these Fernet keys (first encrypts, all
# decrypt). The default is for this example only: a real site sets its own, e.g.
# WEBHOOKS_ENCRYPTION_KEYS=<new key>,<old key> in the environment.
WEBHOOKS_ENCRYPTION_KEYS = env.list(
    "WEBHOOKS_ENCRYPTION_KEYS", default=["8ZYKMrRVX1Ch4k_gFGUCi0Nb1WBra9miBaGVmTUf6xE="]
)
WEBHOOKS_SCOPE_RESOLVER = "example_project.organisations.tenancy.scope_for_user"
WEBHOOKS_SCOPE_CHOICES = "example_project.organisations.webhook_scopes.scope_choices"
# The customers' "Settings > Integrations > Webhooks" page renders in the platform's own
# layout (a "content" block; "title" is filled too).
WEBHOOKS_PORTAL_BASE_TEMPLATE = "platform/base.html"
# Webhooks are a Pro feature: the portal, the admin, the API and delivery ask this.
WEBHOOKS_PLAN_GATE = "example_project.organisations.webhook_scopes.is_pro"
# Prometheus scrapes /metrics/ with `Authorization: Bearer <this>`; unset, only a signed-in
# superuser can read it. `manage.py serve` gives the web server and the workers one
# PROMETHEUS_MULTIPROC_DIR, so the workers' counters show up there.
WEBHOOKS_METRICS_TOKEN = env.str("WEBHOOKS_METRICS_TOKEN", default=None)

# The optional store of the example platform: off, and `store.purchase` does not exist.
EXAMPLE_STORE_ENABLED = env.bool("EXAMPLE_STORE_ENABLED", default=True)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"webhooks": {"handlers": ["console"], "level": "INFO"}},
}

# The REST API (webhooks.api at /api/webhooks/): session or token auth, OpenAPI by
# drf-spectacular, Swagger UI served from this server (drf-spectacular-sidecar).
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Webhooks API",
    "DESCRIPTION": "Configure webhooks, and inspect their events and deliveries.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/webhooks/",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},  # no online validator
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}
# Who may use the API is left to the library's default, deny by default as in the admin:
# each action needs this app's model permission (seed_demo puts alice and bob in a
# "Webhook managers" group), and WEBHOOKS_SCOPE_RESOLVER keeps each to their organisation.
# A platform user with neither, like a learner, is refused.
