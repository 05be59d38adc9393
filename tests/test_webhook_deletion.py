"""Deleting a webhook: gone at once whatever the size of its log, the log after it in the
background, a batch of ids at a time, never loaded. Deleting a busy webhook (328,000
deliveries) in the request took 15-65 s: docs/benchmarks.md."""

import re
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.db import connection
from django.db.models.signals import post_init
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from tests.api.conftest import make_tenant
from tests.factories import DeliveryFactory, EventFactory, SubscriptionFactory
from tests.portal.helpers import PORTAL, signed_in
from tests.testapp.models import Article
from webhooks import dispatch, health_hours, outbox, removal, retention, tasks
from webhooks.models import (
    DeletedWebhook,
    Delivery,
    DeliveryAttempt,
    HealthHour,
    Subscription,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def deliveries_loaded():
    """How many Delivery objects were made from rows (or otherwise) meanwhile."""
    made = []

    def count(sender, instance, **kwargs):
        made.append(instance)

    post_init.connect(count, sender=Delivery)
    yield made
    post_init.disconnect(count, sender=Delivery)


def webhook_with_log(deliveries: int, **fields) -> Subscription:
    sub = SubscriptionFactory(**fields)
    made = [
        DeliveryFactory(
            subscription=sub,
            event=EventFactory(scope=sub.scope),
            status=Delivery.Status.SUCCEEDED,
            next_attempt_at=None,
        )
        for _ in range(deliveries)
    ]
    now = timezone.now()
    attempts = [
        DeliveryAttempt(delivery=d, number=n, request_url=sub.url, succeeded=n == 2, created_at=now)
        for d in made
        for n in (1, 2)
    ]
    DeliveryAttempt.objects.bulk_create(attempts)
    for attempt in attempts:
        attempt.delivery = Delivery.objects.get(pk=attempt.delivery_id)
    health_hours.count(attempts)
    return sub


def delete(sub: Subscription, how: str = "the webhook"):
    """Delete it; its id (``Model.delete`` forgets it)."""
    pk = sub.pk
    if how == "the webhook":
        sub.delete()
    else:
        Subscription.objects.filter(pk=pk).delete()
    return pk


@pytest.mark.parametrize("how", ["the webhook", "a queryset"])
def test_a_webhook_goes_at_once_whatever_the_size_of_its_log(
    how, django_capture_on_commit_callbacks
):
    statements = {}
    for size in (1, 30):
        sub = webhook_with_log(size)
        with (
            CaptureQueriesContext(connection) as queries,
            django_capture_on_commit_callbacks() as after_commit,
        ):
            pk = delete(sub, how)
        statements[size] = [q["sql"] for q in queries.captured_queries]
        # Gone with its hourly figures; its log is left to the task enqueued on commit.
        assert not Subscription.objects.filter(pk=pk).exists()
        assert not HealthHour.objects.filter(subscription=pk).exists()
        assert DeletedWebhook.objects.filter(subscription_id=pk).exists()
        assert Delivery.objects.filter(subscription_id=pk).count() == size
        assert len(after_commit) == 1
    # The same statements for 1 delivery and for 30, none of them reading or writing the log.
    assert len(statements[1]) == len(statements[30])
    log_tables = re.compile(r"webhooks_delivery(attempt)?\W")
    assert not [sql for sql in statements[30] if log_tables.search(sql)]


@pytest.mark.parametrize("how", ["the webhook", "a queryset"])
def test_the_log_goes_after_it_in_batches_never_loaded(how, monkeypatch, deliveries_loaded, commit):
    monkeypatch.setattr(removal, "BATCH", 4)
    enqueued = []
    real_enqueue = outbox.enqueue
    monkeypatch.setattr(
        outbox, "enqueue", lambda *args: enqueued.append(args) or real_enqueue(*args)
    )
    doomed, kept = webhook_with_log(10), webhook_with_log(3)
    deliveries_loaded.clear()
    with CaptureQueriesContext(connection) as queries, commit():
        pk = delete(doomed, how)
    assert enqueued == [("webhooks.tasks.delete_logs", [str(pk)])]
    assert not Delivery.objects.filter(subscription_id=pk).exists()
    assert not DeliveryAttempt.objects.filter(delivery__subscription_id=pk).exists()
    # the other webhook keeps its log and its figures
    assert Delivery.objects.filter(subscription=kept).count() == 3
    assert DeliveryAttempt.objects.filter(delivery__subscription=kept).count() == 6
    assert HealthHour.objects.get(subscription=kept).attempts == 6
    assert deliveries_loaded == []
    deletes = [q["sql"] for q in queries.captured_queries if q["sql"].upper().startswith("DELETE")]
    # three batches of deliveries (4, 4, 2), each with its attempts
    assert len([sql for sql in deletes if re.search(r"webhooks_deliveryattempt\W", sql)]) == 3


def test_a_deleted_webhooks_log_is_out_of_sight_and_never_sent(
    receiver, run_due, admin_client, admin_user
):
    """Until the task has deleted it, the log of a deleted webhook breaks no page, shows in
    no customer's list or count, and its pending deliveries are never sent."""
    acme = make_tenant("Acme")
    ours = acme.subscription(receiver)
    kept = acme.subscription(receiver, description="kept")
    # a log: one delivery that succeeded (with its attempts), one waiting for its retry
    deleted = webhook_with_log(1, url=receiver.url, scope=acme.scope, all_events=True)
    waiting = DeliveryFactory(
        subscription=deleted, event=EventFactory(scope=acme.scope), next_attempt_at=timezone.now()
    )
    still_owed = DeliveryFactory(
        subscription=kept, event=EventFactory(scope=acme.scope), next_attempt_at=timezone.now()
    )
    orphans = [
        str(pk) for pk in Delivery.objects.filter(subscription=deleted).values_list("pk", flat=True)
    ]
    gone = str(delete(deleted))  # on-commit work does not run here: the task never comes
    assert len(orphans) == 2 and Delivery.objects.filter(pk__in=orphans).count() == 2

    customer = signed_in(acme.user)
    superuser_client = APIClient()
    superuser_client.force_authenticate(admin_user)
    pages = {
        "admin, every tenant's deliveries": (admin_client, "/admin/webhooks/delivery/"),
        "admin, failed deliveries": (admin_client, "/admin/webhooks/delivery/?state=failed"),
        "admin, webhooks": (admin_client, "/admin/webhooks/subscription/"),
        "API, every tenant's deliveries": (superuser_client, "/api/webhooks/deliveries/"),
        "API, the customer's deliveries": (acme.client, "/api/webhooks/deliveries/"),
        "API, the customer's events": (acme.client, "/api/webhooks/events/"),
        "API, the customer's webhooks": (acme.client, "/api/webhooks/subscriptions/"),
        "portal, deliveries": (customer, PORTAL + "deliveries/"),
        "portal, webhooks": (customer, PORTAL),
        "portal, a webhook": (customer, f"{PORTAL}{ours.pk}/"),
    }
    for name, (client, url) in pages.items():
        response = client.get(url)
        assert response.status_code == 200, name
        shown = response.content.decode()
        assert not [pk for pk in orphans if pk in shown or pk.replace("-", "") in shown], name
        assert gone not in shown, name
    # one of them, by its address: not found (not a server error)
    for name, (client, url) in {
        "admin": (admin_client, f"/admin/webhooks/delivery/{waiting.pk}/change/"),
        "API": (acme.client, f"/api/webhooks/deliveries/{waiting.pk}/"),
        "API, a superuser": (superuser_client, f"/api/webhooks/deliveries/{waiting.pk}/"),
        "portal": (customer, f"{PORTAL}deliveries/{waiting.pk}/"),
    }.items():
        assert client.get(url).status_code in (302, 404), name

    run_due()
    sent = [r.headers["webhook-id"] for r in receiver.requests]
    assert still_owed.webhook_id in sent and waiting.webhook_id not in sent
    waiting.refresh_from_db()
    assert waiting.attempt_count == 0 and waiting.lease_token is None


def test_the_hourly_purge_finishes_what_a_lost_task_left(monkeypatch):
    """The task may be lost (django-q2 loses tasks), and a fan-out that read the webhook
    just before it went may add a delivery just after: the hourly purge deletes what is
    left, and forgets the webhook only when nothing more can come."""
    monkeypatch.setattr(removal, "BATCH", 2)
    deleted, kept = webhook_with_log(5), webhook_with_log(2)
    gone = delete(deleted)  # the task never runs
    now = timezone.now()

    report = retention.purge(now=now)
    assert (report.deliveries, report.attempts) == (5, 10)
    assert not Delivery.objects.filter(subscription_id=gone).exists()
    assert DeletedWebhook.objects.filter(subscription_id=gone).exists()  # not yet

    late = DeliveryFactory(subscription_id=gone, event=EventFactory())
    report = retention.purge(now=now + timedelta(minutes=5))
    assert report.deliveries == 1 and not Delivery.objects.filter(pk=late.pk).exists()
    assert DeletedWebhook.objects.filter(subscription_id=gone).exists()

    retention.purge(now=now + removal.SETTLE + timedelta(minutes=1))
    assert not DeletedWebhook.objects.exists()
    assert Delivery.objects.filter(subscription=kept).count() == 2


def test_a_time_limited_purge_stops_between_batches_and_forgets_nothing(monkeypatch):
    monkeypatch.setattr(removal, "BATCH", 2)
    gone = delete(webhook_with_log(5))
    ticks = iter(range(1000))
    # Only the purge's own clock ticks: patching ``time.monotonic`` itself let any other
    # thread's call (MariaDB, CI) use up the ticks before the first batch.
    monkeypatch.setattr(removal, "time", SimpleNamespace(monotonic=lambda: next(ticks)))
    cleared = removal.finish_deleted(deadline=2, now=timezone.now() + 2 * removal.SETTLE)
    assert not cleared.finished
    assert 0 < cleared.deliveries < 5
    assert DeletedWebhook.objects.filter(subscription_id=gone).exists()


def test_the_task_and_the_purge_delete_only_the_logs_of_deleted_webhooks():
    """A task's ids and a ``DeletedWebhook`` row are values like any other: a live
    webhook's log is never deleted for them (a task enqueued by hand, a row written in
    the shell), nor does an id that is no UUID stop the task."""
    live, deleted = webhook_with_log(2), webhook_with_log(2)
    gone = delete(deleted)
    DeletedWebhook.objects.create(subscription_id=live.pk)  # by hand

    tasks.delete_logs([str(live.pk), "not-a-uuid", str(gone)])
    assert Delivery.objects.filter(subscription=live).count() == 2
    assert not Delivery.objects.filter(subscription_id=gone).exists()

    retention.purge(now=timezone.now())
    assert Delivery.objects.filter(subscription=live).count() == 2
    assert not DeletedWebhook.objects.filter(subscription_id=live.pk).exists()


def test_an_outcome_of_a_webhook_deleted_mid_request_is_not_recorded_and_fails_no_other(
    receiver, subscribe, commit, monkeypatch
):
    """The webhook goes while its request is in flight: its delivery (still there, the
    log is deleted after) gets no attempt and no hourly figure, and the other outcomes
    recorded with it are recorded; nothing is sent again."""
    doomed, kept = (
        subscribe(receiver, ["article.created"]),
        subscribe(receiver, ["article.created"]),
    )
    real = dispatch.record_outcomes

    def deleted_meanwhile(items, token, trigger=dispatch.AUTOMATIC):
        Subscription.objects.filter(pk=doomed.pk).delete()
        return real(items, token, trigger)

    monkeypatch.setattr(dispatch, "record_outcomes", deleted_meanwhile)
    enqueue = outbox.enqueue  # the log's task would delete the evidence: not run here
    monkeypatch.setattr(
        outbox, "enqueue", lambda func, *args: func == removal.TASK or enqueue(func, *args)
    )
    with commit():
        Article.objects.create(title="hello")
    assert len(receiver.requests) == 2
    orphan = Delivery.objects.get(subscription_id=doomed.pk)
    assert orphan.attempt_count == 0 and not orphan.attempts.exists()
    assert not HealthHour.objects.filter(subscription_id=doomed.pk).exists()
    delivered = Delivery.objects.get(subscription=kept)
    assert delivered.status == Delivery.Status.SUCCEEDED and delivered.attempts.count() == 1
    assert HealthHour.objects.get(subscription=kept).succeeded == 1


def test_the_admins_confirmation_counts_a_big_log_only_up_to_a_bound(admin_client, monkeypatch):
    monkeypatch.setattr("webhooks.admin.subscriptions.COUNT_AT_MOST", 5)
    busy, quiet = webhook_with_log(6), webhook_with_log(2)
    page = admin_client.get(f"/admin/webhooks/subscription/{busy.pk}/delete/").content.decode()
    assert "its delivery log: more than 5 deliveries, more than 5 attempts" in page
    page = admin_client.get(f"/admin/webhooks/subscription/{quiet.pk}/delete/").content.decode()
    assert "its delivery log: 2 deliveries, 4 attempts" in page


def test_a_deliverys_webhook_is_not_constrained_and_no_column_alone_is_indexed():
    """Migration 0016: the webhook's row can go before its log; the indexes of
    ``event_id`` alone and ``subscription_id`` alone are gone (others start with each),
    and the event's foreign key is kept."""
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, Delivery._meta.db_table)
    alone = {
        about["columns"][0]
        for about in found.values()
        if about["index"] and len(about["columns"]) == 1 and not about["primary_key"]
    }
    assert not alone & {"event_id", "subscription_id"}, alone
    keys = {about["foreign_key"][0] for about in found.values() if about["foreign_key"]}
    assert Subscription._meta.db_table not in keys
    if connection.vendor != "sqlite":  # SQLite's introspection reports no foreign keys here
        assert "webhooks_event" in keys
    # nor an hourly health row's webhook (an outcome recorded just after a deletion)
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, HealthHour._meta.db_table)
    assert not [about for about in found.values() if about["foreign_key"]]
