"""A page bound to events through the registry raises them when an editor works in Wagtail's
admin: publish, unpublish, delete."""

from tests.wagtail_site import skip_unless_wagtail_site

skip_unless_wagtail_site()

import pytest  # noqa: E402

from tests.wagtail_site.models import NewsPage  # noqa: E402
from webhooks.models import Event  # noqa: E402

pytestmark = pytest.mark.django_db


@pytest.fixture
def editor(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("ada", is_superuser=True))
    return client


def types() -> list[str]:
    return list(Event.objects.order_by("occurred_at", "id").values_list("type", flat=True))


def publish_new_page(editor, home, title="Spring fair") -> NewsPage:
    response = editor.post(
        f"/admin/pages/add/wagtail_site/newspage/{home.pk}/",
        {"title": title, "slug": "spring-fair", "intro": "Saturday", "action-publish": "1"},
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    return NewsPage.objects.get(title=title)


def test_publishing_unpublishing_and_deleting_in_the_admin_raise_their_events(editor, home):
    page = publish_new_page(editor, home)
    published = Event.objects.get(type="news.published")
    assert published.data == {
        "id": page.pk,
        "title": "Spring fair",
        "intro": "Saturday",
        "live": True,
    }

    assert editor.post(f"/admin/pages/{page.pk}/unpublish/").status_code == 302
    assert Event.objects.get(type="news.unpublished").data["live"] is False

    assert editor.post(f"/admin/pages/{page.pk}/delete/").status_code == 302
    deleted = Event.objects.get(type="news.deleted")
    assert deleted.data["id"] == page.pk and deleted.data["title"] == "Spring fair"


def test_one_event_per_editor_action(editor, home):
    """Wagtail saves a page several times in one transaction; receivers want one event."""
    page = publish_new_page(editor, home)
    assert types().count("news.published") == 1
    assert types().count("news.updated") <= 1  # the publication's own saves: one update at most

    Event.objects.all().delete()
    edited = editor.post(
        f"/admin/pages/{page.pk}/edit/",
        {
            "title": "Spring fair (moved)",
            "slug": "spring-fair",
            "intro": "Sunday",
            "action-publish": "1",
        },
    )
    assert edited.status_code == 302
    assert types() == ["news.updated"]


def test_each_editor_action_of_the_issue_raises_each_event_once_at_most(editor, home):
    """The actions measured on a real site (draft create 1, save draft 2, publish 3, edit and
    publish 2 updates before): each is now one event per binding at most."""
    form = {"title": "Fair", "slug": "fair", "intro": "Saturday"}

    def action(url, **extra) -> list[str]:
        Event.objects.all().delete()
        response = editor.post(url, {**form, **extra})
        assert response.status_code == 302, response.content.decode()[:3000]
        return types()

    add = f"/admin/pages/add/wagtail_site/newspage/{home.pk}/"
    # A draft: Wagtail creates it, then saves its revision. With no `created` binding the
    # page's update is the one event (with one, it would be a single `created`).
    assert action(add) == ["news.updated"]
    page = NewsPage.objects.get(title="Fair")
    edit = f"/admin/pages/{page.pk}/edit/"
    assert action(edit, intro="Sunday") == ["news.updated"]  # save draft
    assert sorted(action(edit, **{"action-publish": "1"})) == ["news.published", "news.updated"]
    assert action(edit, intro="Monday", **{"action-publish": "1"}) == ["news.updated"]
