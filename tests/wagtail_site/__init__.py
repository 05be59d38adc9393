"""A small Wagtail site, for the tests of ``webhooks.contrib.wagtail`` and the Wagtail recipe.

Run in nox's ``wagtail`` session (``nox -s wagtail``), with ``tests.wagtail_site.settings``.
The main suite (without Wagtail, or with the example project's settings) skips these tests.
"""

import importlib.util

import pytest


def skip_unless_wagtail_site() -> None:
    """At the top of a test module of this site, before it imports Wagtail."""
    if importlib.util.find_spec("wagtail") is None:
        pytest.skip("Wagtail is not installed: run `nox -s wagtail`", allow_module_level=True)
    from django.conf import settings

    if "tests.wagtail_site" not in settings.INSTALLED_APPS:
        pytest.skip(
            "needs the Wagtail site's settings: run `nox -s wagtail`", allow_module_level=True
        )
