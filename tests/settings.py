"""Test settings: the example project, with tasks run inline (django-q2 sync mode)."""

from example_project.settings import *  # noqa: F403
from example_project.settings import INSTALLED_APPS, Q_CLUSTER, env

INSTALLED_APPS = [*INSTALLED_APPS, "tests.testapp"]

# Tasks run in the caller; tests of real qcluster processes start their own.
Q_CLUSTER = {**Q_CLUSTER, "sync": True}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
WEBHOOKS_TIMEOUT = 2.0
WEBHOOKS_RETRY_JITTER = 0.0
LOGGING = {"version": 1, "disable_existing_loggers": False}

# Test-only default key; a run may bring its own with WEBHOOKS_ENCRYPTION_KEYS.
WEBHOOKS_ENCRYPTION_KEYS = env.list(
    "WEBHOOKS_ENCRYPTION_KEYS", default=["vGMx1pybi4CKtYcGMktZln_tUSdD-c4NwRgeau1sHzg="]
)
