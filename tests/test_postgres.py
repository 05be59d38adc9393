"""Several workers at once on PostgreSQL: row claims, not luck, decide who sends."""

import os
import threading
from collections import Counter

import pytest
from django.db import connection, connections

from tests.factories import SubscriptionFactory
from webhooks import dispatch, outbox
from webhooks.models import Delivery, Event

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith("postgres"),
        reason="needs DATABASE_URL=postgres://… (CI sets it)",
    ),
    pytest.mark.django_db(transaction=True),
]


def test_two_workers_claiming_the_same_due_deliveries_send_each_exactly_once(receiver):
    assert connection.vendor == "postgresql"
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
