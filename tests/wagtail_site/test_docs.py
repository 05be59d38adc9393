"""docs/wagtail.md's settings, on a Wagtail project's list of apps, give this site's apps."""

from tests.wagtail_site import skip_unless_wagtail_site

skip_unless_wagtail_site()

from django.conf import settings  # noqa: E402

from tests.docs.codeblocks import ROOT, files  # noqa: E402


def test_the_install_block_installs_what_this_site_runs_with():
    block = files(ROOT / "docs" / "wagtail.md")["mysite/settings/base.py"]
    without = [app for app in settings.INSTALLED_APPS if not app.startswith("webhooks")]
    made = {"INSTALLED_APPS": list(without)}
    exec(block, made)
    assert set(made["INSTALLED_APPS"]) == set(settings.INSTALLED_APPS)
    assert made["WEBHOOKS_WAGTAIL_ADMINS_IN_DJANGO_ADMIN"] is False
