"""Several workers at once on PostgreSQL and on MariaDB/MySQL: row claims, not luck, decide
who sends, and fan-out makes one delivery per event and webhook however many workers race."""

import os
import threading
from collections import Counter

import pytest
from django.db import connection, connections

from tests.factories import SubscriptionFactory
from webhooks import dispatch, outbox
from webhooks.models import Delivery, Event

SERVER_DATABASE = os.environ.get("DATABASE_URL", "").startswith(("postgres", "mysql"))

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.mysql,
    pytest.mark.skipif(
        not SERVER_DATABASE,
        reason="needs DATABASE_URL=postgres://… or mysql://… (CI sets both, one run each)",
    ),
    pytest.mark.django_db(transaction=True),
]


def test_two_workers_claiming_the_same_due_deliveries_send_each_exactly_once(receiver):
    assert connection.vendor in ("postgresql", "mysql")
    subs = [SubscriptionFactory(url=receiver.url, all_events=True) for _ in range(4)]
    events = [Event.objects.create(type="article.shared", data={"n": n}) for n in range(30)]
    for event in events:
        outbox.fan_out(event.pk)
    assert Delivery.objects.count() == len(subs) * len(events)
    start = threading.Barrier(4)
    errors = []

    def worker():
        try:
            start.wait()
            while True:
                token, ids = outbox.claim_due(7)
                if not ids:
                    break
                dispatch.send_claimed(ids, token)
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    ids = Counter(r.headers["webhook-id"] for r in receiver.requests)
    assert len(ids) == 120
    assert max(ids.values()) == 1, "a delivery was sent twice"
    assert Delivery.objects.filter(status="succeeded").count() == 120


def test_workers_racing_to_fan_out_the_same_events_make_one_delivery_each(receiver):
    subs = [SubscriptionFactory(url=receiver.url, all_events=True) for _ in range(3)]
    events = [Event.objects.create(type="article.shared", data={"n": n}) for n in range(40)]
    ids = [e.pk for e in events]
    start = threading.Barrier(4)
    errors = []

    def worker(order):
        try:
            start.wait()
            for chunk in range(0, len(order), 8):
                outbox.fan_out_many(order[chunk : chunk + 8], skip_locked=True)
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    orders = [ids, ids[::-1], ids[::2] + ids[1::2], ids[1::2] + ids[::2]]
    threads = [threading.Thread(target=worker, args=(order,)) for order in orders]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert Delivery.objects.count() == len(subs) * len(events)
    assert not Event.objects.filter(fanned_out_at__isnull=True).exists()
