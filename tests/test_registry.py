"""Model changes raise exactly the declared events, and nothing else."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

import webhooks
from tests.testapp.models import Article, Tag, Unbound
from webhooks.models import Event
from webhooks.registry import Binding, Registry

pytestmark = pytest.mark.django_db


def types():
    return list(Event.objects.order_by("occurred_at", "type").values_list("type", flat=True))


def test_create_update_and_real_delete_raise_their_events():
    article = Article.objects.create(title="A")
    article.title = "B"
    article.save()
    pk = article.pk
    article.delete()
    assert types() == ["article.created", "article.updated", "article.deleted"]
    deleted = Event.objects.get(type="article.deleted")
    assert deleted.data == {"id": pk, "title": "B", "status": "draft"}
    assert (deleted.source_model, deleted.source_id) == ("testapp.article", str(pk))


def test_moving_to_the_recycle_bin_is_an_update_not_a_delete():
    article = Article.objects.create(title="A")
    article.in_recycle_bin = True
    article.save()
    assert "article.deleted" not in types()
    assert types().count("article.updated") == 1


def test_field_change_fires_on_reaching_the_value_and_again_after_going_back():
    article = Article.objects.create(title="A")
    for status in ["approved", "approved", "draft", "approved"]:
        article.status = status
        article.save()
    assert types().count("article.approved") == 2


def test_field_change_is_seen_on_an_instance_loaded_from_the_database():
    article = Article.objects.create(title="A")
    loaded = Article.objects.get(pk=article.pk)
    loaded.status = "approved"
    loaded.save()
    assert types().count("article.approved") == 1


def test_condition_filters_events():
    article = Article.objects.create(title="A")
    article.save()  # unpublished: no article.published
    article.is_published = True
    article.save()
    assert types().count("article.published") == 1


def test_many_to_many_add_remove_and_clear_from_either_side():
    article = Article.objects.create(title="A", tenant="t1")
    red, blue = Tag.objects.create(name="red"), Tag.objects.create(name="blue")
    article.tags.add(red, blue)
    article.tags.add(red)  # already there: no second event
    article.tags.remove(red)
    blue.articles.remove(article)  # reverse side
    red.articles.add(article)
    article.tags.clear()
    tagged = Event.objects.filter(type="article.tagged")
    untagged = Event.objects.filter(type="article.untagged")
    assert sorted(e.data["tag"] for e in tagged) == ["blue", "red", "red"]
    assert sorted(e.data["tag"] for e in untagged) == ["blue", "red", "red"]
    assert all(e.scope == "t1" and e.data["article_id"] == article.pk for e in tagged)


def test_payload_is_what_the_binding_says_never_the_whole_row():
    Article.objects.create(title="A", secret_note="hunter2")
    event = Event.objects.get(type="article.created")
    assert "secret_note" not in event.data
    assert "hunter2" not in str(event.data)


def test_default_payload_is_only_the_identity():
    row = Unbound.objects.create(title="secret title")
    assert Binding(Unbound, "created", "unbound.created").make_payload(row) == {
        "id": row.pk,
        "model": "testapp.unbound",
    }


def test_unbound_model_raises_nothing():
    Unbound.objects.create(title="x")
    assert Event.objects.count() == 0


def test_scope_comes_from_the_binding():
    Article.objects.create(title="A", tenant="acme")
    assert Event.objects.get(type="article.created").scope == "acme"


def test_rolled_back_save_leaves_no_event():
    with pytest.raises(RuntimeError), transaction.atomic():
        Article.objects.create(title="A")
        raise RuntimeError
    assert Event.objects.count() == 0


def test_a_save_costs_exactly_one_insert_per_event(django_assert_num_queries):
    article = Article.objects.create(title="A")
    # one UPDATE for the row; one INSERT for article.updated
    with django_assert_num_queries(2) as captured:
        article.title = "B"
        article.save()
    sql = [q["sql"] for q in captured.captured_queries]
    assert sum(s.startswith("INSERT") for s in sql) == 1


def test_bad_declarations_are_refused_with_a_clear_message():
    registry = Registry()
    with pytest.raises(ImproperlyConfigured, match="resource.action"):
        registry.event_type("Item Created")
    with pytest.raises(ImproperlyConfigured, match="declare it first"):
        registry.on_create(Unbound, "unbound.created")
    with pytest.raises(ImproperlyConfigured, match="not a many-to-many"):
        registry.event_type("unbound.tagged")
        registry.on_m2m(Unbound, "title", added="unbound.tagged")


def test_public_api_is_importable_from_the_package():
    assert callable(webhooks.send_event)
    assert callable(webhooks.on_crud)
    with pytest.raises(AttributeError):
        webhooks.not_a_thing  # noqa: B018


def test_update_limited_to_fields_ignores_other_changes():
    from webhooks.registry import registry

    registry.event_type("unbound.renamed", description="test")
    binding = registry.on_update(Unbound, "unbound.renamed", fields=["title"])
    try:
        row = Unbound.objects.create(title="a")
        row.save()  # nothing changed
        row.title = "b"
        row.save()
        loaded = Unbound.objects.get(pk=row.pk)
        loaded.save()
        assert types() == ["unbound.renamed"]
    finally:
        _unbind(registry, binding)


def test_change_on_create_can_be_switched_off():
    from webhooks.registry import registry

    registry.event_type("unbound.retitled", description="test")
    binding = registry.on_change(Unbound, "title", "unbound.retitled", on_create=False)
    try:
        row = Unbound.objects.create(title="a")
        assert types() == []
        row.title = "b"
        row.save()
        assert types() == ["unbound.retitled"]
    finally:
        _unbind(registry, binding)


def _unbind(registry, binding):
    """Undo a test binding so other tests see the registry as the host declared it."""
    from webhooks import receivers

    registry.bindings.remove(binding)
    receivers._by_model[binding.model].remove(binding)
    registry.event_types.pop(binding.event)
