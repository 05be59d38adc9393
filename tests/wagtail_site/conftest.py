import pytest


@pytest.fixture
def home(db):
    """The root of the site's pages (Wagtail's migrations make it)."""
    from django.contrib.contenttypes.models import ContentType
    from wagtail.models import Page

    from tests.wagtail_site.models import NewsPage

    # A transactional test's flush may have taken the content types with it; the page
    # editor's URLs name them.
    ContentType.objects.get_for_model(NewsPage)
    return Page.objects.get(depth=2).specific
