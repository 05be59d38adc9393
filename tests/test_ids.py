"""Events and deliveries get time-ordered ids (UUID version 7, ``webhooks.ids``), so their
rows' index entries go to the indexes' last pages however big the tables are."""

import time
import uuid

import pytest
from django.db import transaction

import webhooks
from tests.testapp.models import Article
from webhooks.ids import uuid7
from webhooks.models import Delivery, Event

pytestmark = pytest.mark.django_db


def test_an_id_is_a_version_7_uuid_of_now_and_ids_increase_with_time():
    before = time.time_ns() // 1_000_000
    first = uuid7()
    after = time.time_ns() // 1_000_000
    assert first.version == 7 and first.variant == uuid.RFC_4122
    assert before <= first.int >> 80 <= after  # its first 48 bits: Unix milliseconds
    time.sleep(0.002)
    assert uuid7() > first
    assert len({uuid7() for _ in range(20_000)}) == 20_000  # 74 random bits each


def test_events_and_deliveries_are_stored_with_time_ordered_ids(subscribe, receiver, commit):
    subscribe(receiver, ["article.created"])
    ids = []
    for title in ("first", "second"):
        with commit():
            Article.objects.create(title=title)
        ids.append(Event.objects.order_by("-occurred_at").values_list("pk", flat=True)[0])
        time.sleep(0.002)
    with transaction.atomic():
        webhooks.send_event("article.created", {"id": 3})
    sent = Event.objects.order_by("-occurred_at").values_list("pk", flat=True)[0]
    assert [pk.version for pk in (*ids, sent)] == [7, 7, 7]
    assert ids[0] < ids[1] < sent
    deliveries = list(Delivery.objects.order_by("created_at").values_list("pk", flat=True))
    assert deliveries and all(pk.version == 7 for pk in deliveries)
    assert deliveries == sorted(deliveries)
