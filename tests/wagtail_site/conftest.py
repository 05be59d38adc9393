import pytest


@pytest.fixture
def home(db):
    """The root of the site's pages (Wagtail's migrations make it)."""
    from wagtail.models import Page

    return Page.objects.get(depth=2).specific
