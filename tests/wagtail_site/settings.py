"""A Wagtail site with webhooks: Wagtail's own apps, ``webhooks`` and its Wagtail app, and a
page model bound to events (``webhook_events.py``). Database and broker as the main suite:
``DATABASE_URL`` (default SQLite) and ``REDIS_URL``; tasks run inline."""

import os

import environ

env = environ.Env()

DEBUG = False
SECRET_KEY = "wagtail-site-tests-not-secret"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
WAGTAIL_SITE_NAME = "Webhooks test site"
WAGTAILADMIN_BASE_URL = "http://127.0.0.1"

INSTALLED_APPS = [
    "tests.wagtail_site",
    "webhooks.contrib.wagtail",
    "wagtail.contrib.forms",
    "wagtail.contrib.redirects",
    "wagtail.embeds",
    "wagtail.sites",
    "wagtail.users",
    "wagtail.snippets",
    "wagtail.documents",
    "wagtail.images",
    "wagtail.search",
    "wagtail.admin",
    "wagtail",
    "modelcluster",
    "taggit",
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
    "django_q",
    "webhooks",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "wagtail.contrib.redirects.middleware.RedirectMiddleware",
]

ROOT_URLCONF = "tests.wagtail_site.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

# pytest-django's test database is in memory on SQLite.
DATABASES = {"default": env.db("DATABASE_URL", default="sqlite:///wagtail-site.sqlite3")}
# As the README recommends: a request's saves and their events commit together.
DATABASES["default"]["ATOMIC_REQUESTS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL;",
    }
    # A file, not pytest-django's shared in-memory database, whose table locks fail the
    # live server's concurrent requests (the browser test) instead of waiting.
    DATABASES["default"]["TEST"] = {"NAME": f"/tmp/webhooks-wagtail-site-{os.getpid()}.sqlite3"}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "static/"
MEDIA_ROOT = env.str("WAGTAIL_MEDIA_ROOT", default="/tmp/webhooks-wagtail-media")
MEDIA_URL = "media/"
LOGIN_URL = "wagtailadmin_login"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

Q_CLUSTER = {
    "name": "wagtail-site",
    "sync": True,
    "orm": "default",
    "max_attempts": 1,
    "ack_failures": True,
    "broker_class": "webhooks.broker.OutboxBroker",
    "timeout": 90,
    "retry": 120,
}
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    Q_CLUSTER = {**Q_CLUSTER, "redis": REDIS_URL}
    del Q_CLUSTER["orm"], Q_CLUSTER["broker_class"]

WEBHOOKS_TIMEOUT = 2.0
WEBHOOKS_RETRY_JITTER = 0.0
WEBHOOKS_ALLOWED_NETWORKS = ["127.0.0.0/8", "::1/128"]
WEBHOOKS_ENCRYPTION_KEYS = ["vGMx1pybi4CKtYcGMktZln_tUSdD-c4NwRgeau1sHzg="]

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
LOGGING = {"version": 1, "disable_existing_loggers": False}
