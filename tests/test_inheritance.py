"""A binding on a model covers its multi-table subclasses and proxies, once per change."""

import pytest
from django.test.utils import isolate_apps

from tests.testapp.models import BlogPage, DraftPage, Page
from webhooks.models import Event

pytestmark = pytest.mark.django_db


def events():
    return [(e.type, e.data["kind"]) for e in Event.objects.order_by("occurred_at", "type")]


@pytest.mark.parametrize("model", [Page, BlogPage, DraftPage], ids=lambda m: m.__name__)
def test_create_update_change_and_delete_fire_once_for_every_kind_of_page(model):
    page = model.objects.create(title="Hello")
    assert events() == [("page.created", model.__name__)]

    Event.objects.all().delete()
    page = model.objects.get(pk=page.pk)  # loaded afresh: snapshots work on subclasses too
    page.title = "Hello again"
    page.live = True
    page.save()
    assert sorted(t for t, _ in events()) == ["page.published", "page.renamed"]
    assert {kind for _, kind in events()} == {model.__name__}

    Event.objects.all().delete()
    page.save()  # nothing watched changed: no event
    assert events() == []

    page.delete()
    [(event_type, _kind)] = events()
    assert event_type == "page.deleted"
    assert not Page.objects.exists()


def test_deleting_a_subclass_row_raises_one_event_with_the_page_id():
    blog = BlogPage.objects.create(title="Post", body="…")
    page_id = blog.page_ptr_id
    Event.objects.all().delete()
    blog.delete()
    [event] = Event.objects.all()
    assert event.type == "page.deleted" and event.data["id"] == page_id


@isolate_apps("tests.testapp")
def test_a_subclass_defined_after_the_binding_is_covered():
    class LatePage(Page):
        class Meta:
            app_label = "testapp"
            proxy = True

    LatePage(title="late").save()
    assert events() == [("page.created", "LatePage")]


@pytest.mark.parametrize(
    "delete",
    [
        pytest.param(lambda pk: BlogPage.objects.get(pk=pk).delete(), id="the-child"),
        pytest.param(lambda pk: Page.objects.get(pk=pk).delete(), id="its-base-row"),
        pytest.param(lambda pk: Page.objects.filter(pk=pk).delete(), id="a-base-queryset"),
    ],
)
def test_a_delete_hands_the_payload_the_most_specific_instance(delete):
    """A binding on the base class (Wagtail's Page) gets the specific page, once, however
    the delete was made."""
    blog = BlogPage.objects.create(title="Post", body="…")
    plain = Page.objects.create(title="Plain")
    Event.objects.all().delete()
    delete(blog.pk)
    [event] = Event.objects.all()
    assert (event.type, event.data["kind"], event.data["id"]) == (
        "page.deleted",
        "BlogPage",
        blog.pk,
    )

    Event.objects.all().delete()
    Page.objects.filter(pk=plain.pk).delete()  # a page with no child row: itself
    [event] = Event.objects.all()
    assert (event.data["kind"], event.data["id"]) == ("Page", plain.pk)


def test_deleting_several_kinds_of_page_at_once_raises_one_specific_event_each():
    pages = [BlogPage.objects.create(title="a"), Page.objects.create(title="b")]
    pages.append(BlogPage.objects.create(title="c"))
    Event.objects.all().delete()
    Page.objects.all().delete()
    assert sorted((e.data["id"], e.data["kind"]) for e in Event.objects.all()) == sorted(
        (p.pk, type(p).__name__) for p in pages
    )
