"""The Wagtail recipe's host project (docs/host-developers.md): the Wagtail test site's
settings with the recipe's ``home`` app instead of the test site's page bindings."""

from tests.wagtail_site.settings import *  # noqa: F403
from tests.wagtail_site.settings import INSTALLED_APPS

INSTALLED_APPS = ["home", *(app for app in INSTALLED_APPS if app != "tests.wagtail_site")]
MIGRATION_MODULES = {}
