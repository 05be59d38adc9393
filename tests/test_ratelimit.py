"""Rate limits customers set: a webhook limited to N messages per second gets at most N
per second (after one second's burst), whatever the number of workers, and nothing
over the limit is lost, failed or counted as an attempt: it waits its turn."""

from __future__ import annotations

import os
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone

from tests.factories import SubscriptionFactory
from tests.testapp.models import Article
from webhooks import actions, dispatch, outbox, ratelimit, sweeper, wakeups
from webhooks.models import Delivery, DeliveryAttempt, Event

SERVER_DATABASE = os.environ.get("DATABASE_URL", "").startswith(("postgres", "mysql"))


def wait_until(condition, timeout: float, poll) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        poll()
        time.sleep(0.05)


def paced(arrivals: list[float], limit: int) -> float:
    """Messages per second after the first second's burst, measured at the receiver."""
    arrivals = sorted(arrivals)
    after_burst = arrivals[limit:]
    return len(after_burst) / (arrivals[-1] - arrivals[0])


@pytest.mark.django_db
def test_a_limited_webhook_gets_its_events_at_its_rate_none_lost_none_failed(
    receiver, other_receiver, subscribe, commit
):
    limited = subscribe(receiver, ["article.created"], rate_limit=10)
    subscribe(other_receiver, ["article.created"])  # no limit, beside it
    started = time.monotonic()
    with commit():
        for n in range(40):
            Article.objects.create(title=f"a{n}")
    elapsed = time.monotonic() - started

    # The unlimited webhook got everything at once; the limited one no more than its rate.
    assert len(other_receiver.requests) == 40
    assert len(receiver.requests) <= 10 + 10 * elapsed + 1
    waiting = Delivery.objects.filter(subscription=limited, status=Delivery.Status.PENDING)
    assert waiting.count() == 40 - len(receiver.requests) > 0

    def poll():  # the sweeper, polling as it does while work is ahead
        with commit():
            sweeper.sweep_once()

    wait_until(lambda: len(receiver.requests) >= 40, timeout=30, poll=poll)
    ids = [r.headers["webhook-id"] for r in receiver.requests]
    assert len(ids) == 40 and len(set(ids)) == 40  # every event, once
    assert paced([r.at for r in receiver.requests], limit=10) <= 10 * 1.05
    attempts = DeliveryAttempt.objects.filter(delivery__subscription=limited)
    assert attempts.count() == 40  # one attempt each: waiting was never an attempt
    assert not attempts.filter(succeeded=False).exists()
    limited.refresh_from_db()
    assert limited.consecutive_failures == 0 and limited.is_active


@pytest.mark.django_db
def test_deliveries_over_the_limit_are_given_back_pending_each_due_at_its_turn(
    subscribe, receiver, other_receiver, monkeypatch
):
    woken = []
    monkeypatch.setattr(wakeups, "due_at", woken.append)
    limited = subscribe(receiver, rate_limit=5)
    other = subscribe(other_receiver)
    events = [Event.objects.create(type="article.shared", data={"n": n}) for n in range(15)]
    outbox.fan_out_many([e.pk for e in events])
    token, ids = outbox.claim_due(100)
    deliveries = list(Delivery.objects.filter(pk__in=ids).order_by("created_at", "pk"))
    for d in deliveries:
        d.subscription = limited if d.subscription_id == limited.pk else other
    now = timezone.now()

    admitted = ratelimit.admit(deliveries, token, now=now)

    assert sum(d.subscription_id == other.pk for d in admitted) == 15  # unaffected
    assert sum(d.subscription_id == limited.pk for d in admitted) == 5  # one second's worth
    waiting = Delivery.objects.filter(subscription=limited).exclude(pk__in=[d.pk for d in admitted])
    assert waiting.count() == 10
    # Not leased (the sweeper may take them), not tried, pending, each at its own turn.
    assert not waiting.filter(lease_token__isnull=False).exists()
    assert not waiting.exclude(status=Delivery.Status.PENDING).exists()
    assert not waiting.filter(attempt_count__gt=0).exists()
    assert not DeliveryAttempt.objects.exists()
    turns = sorted(waiting.values_list("next_attempt_at", flat=True))
    assert turns == [now + timedelta(seconds=0.2 * k) for k in range(1, 11)]
    assert woken == turns
    # The admitted ones stay leased to the caller, to be sent now.
    assert Delivery.objects.filter(lease_token=token).count() == 20


@pytest.mark.django_db
def test_test_events_and_resends_are_not_held_by_the_rate_limit(
    receiver, subscribe, commit, no_plan_gate
):
    webhook = subscribe(receiver, ["article.created"], rate_limit=1)
    with commit():
        Article.objects.create(title="first")
    assert len(receiver.requests) == 1  # this second's one message
    with commit():
        for _ in range(3):
            actions.send_example(webhook, "article.created")
        actions.resend(Delivery.objects.filter(subscription=webhook))
    assert len(receiver.requests) == 5  # asked for by a person: sent at once


@pytest.mark.django_db
def test_an_out_of_range_stored_limit_is_brought_into_range_not_an_error(
    receiver, subscribe, commit
):
    webhook = subscribe(receiver, ["article.created"])
    type(webhook).objects.filter(pk=webhook.pk).update(rate_limit=0)  # written without forms
    webhook.refresh_from_db()
    assert ratelimit.rate_of(webhook) == 1
    with commit():
        Article.objects.create(title="a")
        Article.objects.create(title="b")
    assert len(receiver.requests) == 1
    assert Delivery.objects.filter(status=Delivery.Status.PENDING).count() == 1


@pytest.mark.postgres
@pytest.mark.mysql
@pytest.mark.skipif(
    not SERVER_DATABASE,
    reason="needs DATABASE_URL=postgres://… or mysql://… (CI sets both, one run each)",
)
@pytest.mark.django_db(transaction=True)
def test_two_workers_sending_for_one_webhook_share_its_limit(receiver, other_receiver):
    assert connection.vendor in ("postgresql", "mysql")
    limited = SubscriptionFactory(url=receiver.url, all_events=True, rate_limit=5)
    SubscriptionFactory(url=other_receiver.url, all_events=True)
    events = [Event.objects.create(type="article.shared", data={"n": n}) for n in range(25)]
    outbox.fan_out_many([e.pk for e in events])
    start = threading.Barrier(2)
    errors = []

    def worker():
        try:
            start.wait()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and len(receiver.requests) < 25:
                token, ids = outbox.claim_due(4)
                if ids:
                    dispatch.send_claimed(ids, token)
                else:
                    time.sleep(0.05)
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    ids = [r.headers["webhook-id"] for r in receiver.requests]
    assert len(ids) == 25 and len(set(ids)) == 25
    assert len(other_receiver.requests) == 25
    assert paced([r.at for r in receiver.requests], limit=5) <= 5 * 1.05
    attempts = DeliveryAttempt.objects.filter(delivery__subscription=limited)
    assert attempts.count() == 25 and not attempts.filter(succeeded=False).exists()


@pytest.mark.django_db
def test_new_events_wait_behind_deliveries_already_waiting_their_turn(subscribe, receiver):
    """A backlog comes back at the limit's pace, oldest first: a new event does not take
    the turn of one that has waited (which would be postponed again, and again)."""
    limited = subscribe(receiver, rate_limit=2)
    events = [Event.objects.create(type="article.shared", data={"n": n}) for n in range(6)]
    outbox.fan_out_many([e.pk for e in events])
    token, ids = outbox.claim_due(100)
    deliveries = list(Delivery.objects.filter(pk__in=ids).order_by("created_at", "pk"))
    for d in deliveries:
        d.subscription = limited
    now = timezone.now()
    first, second = deliveries[:4], deliveries[4:]
    assert len(ratelimit.admit(first, token, now=now)) == 2  # two wait: at +0.5 s, +1 s
    # Later, the limit would let one more go; but two are waiting: the new ones queue.
    later = now + timedelta(seconds=0.6)
    assert ratelimit.admit(second, token, new=True, now=later) == []
    turns = sorted(
        Delivery.objects.filter(pk__in=[d.pk for d in second]).values_list(
            "next_attempt_at", flat=True
        )
    )
    assert turns == [now + timedelta(seconds=1.5), now + timedelta(seconds=2)]


@pytest.mark.django_db
def test_a_limit_the_database_cannot_check_holds_back_only_its_own_webhook(
    subscribe, receiver, other_receiver, monkeypatch
):
    from django.db import OperationalError

    limited = subscribe(receiver, rate_limit=5)
    other = subscribe(other_receiver)
    event = Event.objects.create(type="article.shared", data={})
    outbox.fan_out_many([event.pk])
    token, ids = outbox.claim_due(10)
    deliveries = list(Delivery.objects.filter(pk__in=ids).select_related("subscription"))

    def refused(*args, **kwargs):
        raise OperationalError("could not obtain lock")

    monkeypatch.setattr(ratelimit, "reserve", refused)
    admitted = ratelimit.admit(deliveries, token)
    assert [d.subscription_id for d in admitted] == [other.pk]
    held = Delivery.objects.get(subscription=limited)
    assert held.lease_token is None and held.status == Delivery.Status.PENDING  # still due
