"""One event per change: several saves of one object in one transaction raise one event
per binding, with the state of the last save, and never an event that was rolled back."""

import dataclasses

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from tests.testapp.models import Article, BlogPage, Unbound
from webhooks import receivers
from webhooks.models import Event
from webhooks.registry import Registry

pytestmark = pytest.mark.django_db(transaction=True)


def events():
    return [(e.type, e.data.get("title")) for e in Event.objects.order_by("occurred_at", "type")]


@pytest.fixture
def article():
    article = Article.objects.create(title="v1")  # autocommit: its own transaction
    Event.objects.all().delete()
    return article


def test_several_saves_in_one_transaction_raise_one_update_with_the_last_state(article):
    with transaction.atomic():
        for title in ("v2", "v3", "v4"):
            article.title = title
            article.save()
    assert events() == [("article.updated", "v4")]


def test_a_create_then_updates_in_one_transaction_is_one_created_event_with_the_final_state():
    with transaction.atomic():
        article = Article.objects.create(title="draft")
        article.title = "final"
        article.save()
        article.save()
    assert events() == [("article.created", "final")]


def test_wagtail_like_saves_of_a_child_page_raise_one_created_event():
    with transaction.atomic():
        page = BlogPage.objects.create(title="draft")
        page.body = "revision"
        page.save()
        page.title, page.live = "Published", True
        page.save()
    assert [(e.type, e.data["title"], e.data["kind"]) for e in Event.objects.order_by("type")] == [
        ("page.created", "Published", "BlogPage"),
        ("page.published", "Published", "BlogPage"),
    ]


def test_saves_in_two_transactions_are_two_events(article):
    for title in ("v2", "v3"):
        with transaction.atomic():
            article.title = title
            article.save()
    assert events() == [("article.updated", "v2"), ("article.updated", "v3")]


def test_saves_in_autocommit_are_one_event_each_as_before(article):
    article.title = "v2"
    article.save()
    article.title = "v3"
    article.save()
    assert events() == [("article.updated", "v2"), ("article.updated", "v3")]


def test_a_rolled_back_transaction_leaves_nothing(article):
    with pytest.raises(RuntimeError), transaction.atomic():
        article.title = "v2"
        article.save()
        with transaction.atomic():  # a released savepoint goes with its transaction
            article.title = "v3"
            article.save()
        raise RuntimeError
    assert events() == []


def test_a_rolled_back_savepoint_takes_its_first_event_and_a_later_save_raises_it_again(article):
    with transaction.atomic():
        with pytest.raises(RuntimeError), transaction.atomic():
            article.title = "rolled back"
            article.save()
            raise RuntimeError
        assert events() == []
        article.title = "kept"
        article.save()
    assert events() == [("article.updated", "kept")]


def test_a_rolled_back_savepoint_takes_back_only_its_own_update(article):
    with transaction.atomic():
        article.title = "kept"
        article.save()
        with pytest.raises(RuntimeError), transaction.atomic():
            article.title = "rolled back"
            article.save()
            raise RuntimeError
    assert events() == [("article.updated", "kept")]


def test_a_rolled_back_savepoint_that_created_the_object_leaves_no_created_event():
    with transaction.atomic():
        with pytest.raises(RuntimeError), transaction.atomic():
            Article.objects.create(title="ghost")
            raise RuntimeError
        Article.objects.create(title="real")
    assert events() == [("article.created", "real")]


def test_a_save_that_changes_nothing_watched_still_refreshes_the_pending_event(article):
    with transaction.atomic():
        article.status = "approved"
        article.save()
        article.title = "retitled"
        article.save()
    by_type = {e.type: e.data for e in Event.objects.all()}
    assert sorted(by_type) == ["article.approved", "article.updated"]
    assert by_type["article.approved"]["title"] == "retitled"


def test_each_object_gets_its_own_event(article):
    other = Article.objects.create(title="other")
    Event.objects.all().delete()
    with transaction.atomic():
        for obj in (article, other, article, other):
            obj.title += "!"
            obj.save()
    assert sorted(events()) == [("article.updated", "other!!"), ("article.updated", "v1!!")]


def test_a_binding_can_ask_for_one_event_per_save(article, monkeypatch):
    bindings = [
        dataclasses.replace(b, coalesce=False) if b.event == "article.updated" else b
        for b in receivers._by_model[Article]
    ]
    monkeypatch.setitem(receivers._by_model, Article, bindings)
    with transaction.atomic():
        for title in ("v2", "v3"):
            article.title = title
            article.save()
    assert events() == [("article.updated", "v2"), ("article.updated", "v3")]


def test_coalesce_is_an_argument_of_the_binding_api_and_on_by_default(monkeypatch):
    monkeypatch.setattr(receivers, "connect", lambda binding: None)
    registry = Registry()
    registry.event_type("article.saved")
    assert registry.on_update(Article, "article.saved").coalesce is True
    assert registry.on_update(Article, "article.saved", coalesce=False).coalesce is False


def event_writes(captured):
    table = Event._meta.db_table
    return [q["sql"].split()[0] for q in captured if table in q["sql"]]


def test_a_single_save_still_costs_one_insert_and_a_later_one_an_update(article):
    bare = Unbound.objects.create(title="v1")
    # Captured inside the transaction: the tests' sync broker fans out after the commit.
    with transaction.atomic(), CaptureQueriesContext(connection) as baseline:
        bare.title = "v2"
        bare.save()
    with transaction.atomic(), CaptureQueriesContext(connection) as once:
        article.title = "v2"
        article.save()
    assert len(once) == len(baseline) + 1
    assert event_writes(once) == ["INSERT"]
    with transaction.atomic(), CaptureQueriesContext(connection) as thrice:
        for title in ("v3", "v4", "v5"):
            article.title = title
            article.save()
    assert len(thrice) == 3 * len(baseline) + 3
    assert event_writes(thrice) == ["INSERT", "UPDATE", "UPDATE"]


@pytest.mark.django_db(transaction=False)
def test_inside_a_test_case_each_atomic_block_is_a_transaction_of_its_own():
    """Django's TestCase wraps every test in atomic blocks of its own: the host's
    transactions are the blocks opened inside them, as in production."""
    article = Article.objects.create(title="v1")
    article.title = "v2"
    article.save()
    for title in ("v3", "v4"):
        with transaction.atomic():
            article.title = title
            article.save()
            article.save()
    assert events() == [
        ("article.created", "v1"),
        ("article.updated", "v2"),
        ("article.updated", "v3"),
        ("article.updated", "v4"),
    ]
