"""The guides' host project: the test settings plus ``myapp``. Guide blocks marked
``<!-- file: docs_settings.py -->`` are appended below."""

from tests.settings import *  # noqa: F403
from tests.settings import INSTALLED_APPS

# The suite's own test app declares article.* events of its own: leave it out.
INSTALLED_APPS = [*(app for app in INSTALLED_APPS if app != "tests.testapp"), "myapp"]

# The example project names its own organisations; the guide's host project keeps the
# library's default (free-text scopes).
del WEBHOOKS_SCOPE_CHOICES  # noqa: F821
# Nor its plan gate (Pro organisations, scopes "org:<id>"): docs/portal.md sets its own.
WEBHOOKS_PLAN_GATE = None
# Nor its layout and sign-in page for customers.
WEBHOOKS_PORTAL_BASE_TEMPLATE = "webhooks/portal/standalone.html"
