"""The host contract: a save or ``send_event`` fails only for a mistake at the call site.

Whatever state the webhooks are in (type switched off, never synced, nobody subscribed,
broker down), the host's write goes through. Data that is not JSON is refused with
``InvalidPayload`` before anything is written — never a database error in the host's
transaction.
"""

import math
from unittest import mock

import pytest
from django.db import transaction
from django.test import override_settings

import webhooks
from tests.testapp.models import Article
from webhooks import outbox
from webhooks.exceptions import InvalidPayload, UnknownEventType
from webhooks.models import Delivery, Event, EventType

pytestmark = pytest.mark.django_db(transaction=True)


def nested(depth):
    data = "bottom"
    for _ in range(depth):
        data = {"child": data}
    return data


@pytest.fixture(autouse=True)
def broker_up_again():
    outbox._broker["down_until"] = 0.0
    yield
    outbox._broker["down_until"] = 0.0


def test_switched_off_type_does_not_break_send_event_or_a_save(receiver, subscribe):
    subscribe(receiver, all_events=True)
    EventType.objects.update(is_active=False)
    with transaction.atomic():
        webhooks.send_event("article.shared", {"id": 1})
        Article.objects.create(title="saved")
    assert Article.objects.count() == 1
    recorded = set(Event.objects.values_list("type", flat=True))
    assert recorded == {"article.shared", "article.created"}
    assert receiver.requests == [] and Delivery.objects.count() == 0


def test_types_never_synced_do_not_break_send_event_or_a_save():
    EventType.objects.all().delete()  # deployed before migrate / webhooks_sync_event_types
    with transaction.atomic():
        webhooks.send_event("article.shared", {"id": 1})
        Article.objects.create(title="saved")
    assert Article.objects.count() == 1 and Event.objects.count() == 2


def test_nobody_subscribed_is_fine():
    with transaction.atomic():
        article = Article.objects.create(title="alone")
        article.title = "still alone"
        article.save()
        article.delete()
    # The update is part of the creation (one event per change): created, then deleted.
    created, deleted = Event.objects.order_by("occurred_at")
    assert (created.type, created.data["title"]) == ("article.created", "still alone")
    assert deleted.type == "article.deleted"


def test_broker_down_does_not_break_a_save(receiver, subscribe):
    subscribe(receiver, all_events=True)
    with mock.patch("django_q.tasks.async_task", side_effect=ConnectionError("broker down")):
        with transaction.atomic():
            Article.objects.create(title="saved anyway")
        webhooks.send_event("article.shared", {"id": 2})
    assert Article.objects.count() == 1 and Event.objects.count() == 2


def test_undeclared_type_is_the_callers_mistake():
    with pytest.raises(UnknownEventType, match="Declared types: .*article.shared"):
        webhooks.send_event("article.sharde", {})
    assert Event.objects.count() == 0


BAD_DATA = {
    "NaN": ({"score": math.nan}, "NaN and ±Infinity"),
    "Infinity": ({"score": math.inf}, "NaN and ±Infinity"),
    "-Infinity": ([-math.inf], "NaN and ±Infinity"),
    "NUL in a value": ({"name": "a\x00b"}, "NUL character"),
    "NUL in a key": ({"a\x00": 1}, "NUL character"),
    "lone surrogate": ({"name": "\ud800"}, "lone surrogate"),
    "3000 deep": (nested(3000), "more than 32 deep"),
    "not JSON at all": ({"when": object()}, "not JSON-serialisable"),
    "10 MB": ({"blob": "x" * 10_000_000}, "at most 262144 are accepted"),
}


@pytest.mark.parametrize("case", BAD_DATA, ids=list(BAD_DATA))
def test_data_that_is_not_json_is_refused_before_anything_is_written(case):
    data, message = BAD_DATA[case]
    with transaction.atomic():
        Article.objects.bulk_create([Article(title="host work before")])  # no signal
        with pytest.raises(InvalidPayload, match=message):
            webhooks.send_event("article.shared", data)
        # The host's transaction is intact (a DataError would have broken it on PostgreSQL).
        Article.objects.bulk_create([Article(title="host work after")])
    assert Article.objects.count() == 2
    assert Event.objects.count() == 0


def test_a_bound_payload_that_is_not_json_fails_the_save_at_the_call_site():
    from webhooks.registry import Binding

    with mock.patch.object(Binding, "make_payload", return_value={"x": math.inf}):
        with pytest.raises(InvalidPayload, match="article.created"):
            with transaction.atomic():
                Article.objects.create(title="bad payload")
    assert Article.objects.count() == 0 and Event.objects.count() == 0


@override_settings(WEBHOOKS_MAX_PAYLOAD_BYTES=100, WEBHOOKS_MAX_PAYLOAD_DEPTH=3)
def test_size_and_depth_limits_are_settings():
    webhooks.send_event("article.shared", {"a": {"b": "x" * 50}})
    with pytest.raises(InvalidPayload, match="at most 100 are accepted"):
        webhooks.send_event("article.shared", {"a": "x" * 200})
    with pytest.raises(InvalidPayload, match="more than 3 deep"):
        webhooks.send_event("article.shared", {"a": {"b": {"c": [1]}}})
    assert Event.objects.count() == 1


def test_scope_too_long_for_its_column_is_refused_not_a_database_error():
    with pytest.raises(InvalidPayload, match="scope"):
        webhooks.send_event("article.shared", {}, scope="t" * 101)
    assert Event.objects.count() == 0


def test_missing_encryption_keys_do_not_break_a_save(receiver, subscribe, settings):
    """A deployment that forgot WEBHOOKS_ENCRYPTION_KEYS (and skipped `manage.py check`):
    the webhooks cannot be read, but the host's saves still go through."""
    subscribe(receiver, all_events=True)
    del settings.WEBHOOKS_ENCRYPTION_KEYS
    with transaction.atomic():
        Article.objects.create(title="saved")
        webhooks.send_event("article.shared", {"id": 3})
    assert Article.objects.count() == 1 and Event.objects.count() == 2
