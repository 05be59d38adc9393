"""Recording outcomes: one delivery's failure never touches another's, and a sent delivery
is recorded once, even when the database fails while recording it."""

import os

import pytest
from django.db import OperationalError

from tests.receiver import Answer
from tests.testapp.models import Article
from webhooks import dispatch
from webhooks.models import Delivery, DeliveryAttempt

pytestmark = pytest.mark.django_db


@pytest.fixture
def poison_answers(monkeypatch):
    """The database refuses the attempt row of any answer whose body is "poison" (a CHECK
    constraint violation: a negative status code), as PostgreSQL refused NUL bytes."""
    real = dispatch._attempt

    def attempt(row, delivery, request, outcome, trigger, at):
        made = real(row, delivery, request, outcome, trigger, at)
        if outcome.body == "poison":
            made.response_status_code = -1
        return made

    monkeypatch.setattr(dispatch, "_attempt", attempt)


def test_an_outcome_the_database_refuses_does_not_roll_back_the_others(
    receiver, other_receiver, subscribe, commit, poison_answers
):
    healthy = [subscribe(receiver, ["article.created"]) for _ in range(3)]
    bad = subscribe(other_receiver, ["article.created"])
    other_receiver.default = Answer(200, "poison")
    with commit():
        Article.objects.create(title="hello")
    for sub in healthy:
        delivery = Delivery.objects.get(subscription=sub)
        assert delivery.status == Delivery.Status.SUCCEEDED
        assert delivery.attempts.count() == 1
    assert len(receiver.requests) == 3  # each sent once, none again
    poisoned = Delivery.objects.get(subscription=bad)
    attempt = poisoned.attempts.get()  # the attempt is logged, without the answer
    assert attempt.response_status_code == 200 and not attempt.succeeded
    assert "could not be recorded" in attempt.error_message
    assert poisoned.status == Delivery.Status.PENDING and poisoned.next_attempt_at
    assert poisoned.lease_token is None  # retried on schedule, not held until a lease expires


def test_a_transient_database_error_while_recording_is_retried_not_resent(
    receiver, subscribe, commit, monkeypatch
):
    monkeypatch.setattr(dispatch, "RECORDING_BACKOFF", 0.01)
    real, failures = dispatch._record_group, []

    def flaky(items, token, trigger):
        if len(failures) < 2:
            failures.append(1)
            raise OperationalError("database is locked")
        return real(items, token, trigger)

    monkeypatch.setattr(dispatch, "_record_group", flaky)
    subscribe(receiver, ["article.created"])
    with commit():
        Article.objects.create(title="hello")
    delivery = Delivery.objects.get()
    assert len(failures) == 2
    assert len(receiver.requests) == 1
    assert delivery.status == Delivery.Status.SUCCEEDED and delivery.attempts.count() == 1


def test_a_recording_whose_commit_answer_was_lost_is_not_logged_twice(
    receiver, subscribe, commit, monkeypatch
):
    monkeypatch.setattr(dispatch, "RECORDING_BACKOFF", 0.01)
    real, calls = dispatch._record_group, []

    def lost_answer(items, token, trigger):
        calls.append(1)
        result = real(items, token, trigger)
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return result

    monkeypatch.setattr(dispatch, "_record_group", lost_answer)
    subscribe(receiver, ["article.created"])
    with commit():
        Article.objects.create(title="hello")
    assert len(receiver.requests) == 1
    assert DeliveryAttempt.objects.count() == 1
    assert Delivery.objects.get().status == Delivery.Status.SUCCEEDED


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith(("postgres", "mysql")),
    reason="row locks: needs DATABASE_URL=postgres://… (or mysql:// for MariaDB)",
)
@pytest.mark.django_db(transaction=True)
def test_workers_recording_the_same_subscriptions_in_opposite_orders_never_deadlock():
    """Two workers each record a failure for webhooks A and B, in opposite orders, over and
    over: locks follow one fixed order, so neither ever waits for the other in a cycle."""
    import threading

    from django.db import connections

    from tests.factories import DeliveryFactory, SubscriptionFactory
    from webhooks import delivery as http

    subs = [SubscriptionFactory(url=f"https://example.com/{n}") for n in range(2)]
    errors, rounds = [], 60

    def worker(order):
        try:
            mine = [DeliveryFactory(subscription=sub) for sub in order]
            failed = http.Outcome(status_code=500, error_kind="http_5xx", error_message="x")
            for _ in range(rounds):
                items = [
                    (d, http.OutgoingRequest(d.subscription.url, {}, b"{}"), failed, _now())
                    for d in mine
                ]
                dispatch._record_group(items, None, DeliveryAttempt.Trigger.MANUAL)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(o,)) for o in (subs, subs[::-1])]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert DeliveryAttempt.objects.count() == 2 * 2 * rounds


def _statements(queries) -> list[str]:
    """The SQL a ``CaptureQueriesContext`` saw, without transaction control."""
    return [
        q["sql"]
        for q in queries.captured_queries
        if not q["sql"].upper().startswith(("SAVEPOINT", "RELEASE", "BEGIN", "COMMIT"))
    ]


def _now():
    from django.utils import timezone

    return timezone.now()


def test_what_several_tasks_handed_over_is_recorded_together(receiver, subscribe, monkeypatch):
    """A worker process's sender holds deliveries that several tasks leased, each under its
    own token: those whose requests end together are recorded in one transaction, not one
    per task, and each lease is released."""
    import time
    import uuid
    from datetime import timedelta

    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from tests.factories import DeliveryFactory

    subscription = subscribe(receiver, ["article.created"])
    # Requests end "together" within the group's wait: long here, so that a loaded machine
    # still ends all three within it (the group is recorded once none is in flight).
    monkeypatch.setattr(dispatch, "RECORD_GROUP_WAIT", 30.0)
    loop = dispatch.SendLoop(8)
    for _ in range(3):  # three tasks, one delivery each
        token = uuid.uuid4()
        leased_until = timezone.now() + timedelta(minutes=5)
        delivery = DeliveryFactory(
            subscription=subscription, lease_token=token, leased_until=leased_until
        )
        loop.add([delivery], token, dispatch.AUTOMATIC, start_by=time.monotonic() + 60)
    with CaptureQueriesContext(connection) as queries:
        while not loop.idle():
            loop.step(1.0)
    insert = f"INSERT INTO {connection.ops.quote_name('webhooks_deliveryattempt')}"
    logged = [q for q in queries if q["sql"].startswith(insert)]
    assert len(logged) == 1
    assert len(receiver.requests) == 3
    assert set(Delivery.objects.values_list("status", "lease_token")) == {("succeeded", None)}


def test_a_lease_taken_over_meanwhile_is_kept_when_several_are_recorded_together():
    """Recorded together, each delivery is released only under the lease it was sent with:
    one whose lease ran out and was claimed again keeps its new lease."""
    import uuid
    from datetime import timedelta

    from django.utils import timezone

    from tests.factories import DeliveryFactory
    from webhooks import delivery as http

    sent_under = [uuid.uuid4(), uuid.uuid4()]
    leased_until = timezone.now() + timedelta(minutes=5)
    mine, taken = (
        DeliveryFactory(lease_token=token, leased_until=leased_until) for token in sent_under
    )
    new_lease = uuid.uuid4()
    Delivery.objects.filter(pk=taken.pk).update(lease_token=new_lease)
    ok = http.Outcome(status_code=204)
    items = [
        (d, http.OutgoingRequest(d.subscription.url, {}, b"{}"), ok, _now()) for d in (mine, taken)
    ]
    leases = {d.pk: token for d, token in zip((mine, taken), sent_under, strict=True)}
    dispatch.record_outcomes(items, leases)
    mine.refresh_from_db()
    taken.refresh_from_db()
    assert mine.lease_token is None and mine.status == Delivery.Status.SUCCEEDED
    assert taken.lease_token == new_lease  # its new holder's, still
    assert DeliveryAttempt.objects.count() == 2


def test_a_delivery_sent_twice_keeps_both_attempts_when_recording_the_second_is_retried(
    monkeypatch,
):
    """Its lease ran out mid-request and it was sent again: both outcomes reach one
    recording, in two groups. The second group's first try fails for a moment; its retry
    still logs the attempt (a retry skips what its failed try may have committed, told
    apart by delivery and time: the first group's attempt is not that)."""
    import uuid
    from datetime import timedelta

    from django.utils import timezone

    from tests.factories import DeliveryFactory
    from webhooks import delivery as http

    monkeypatch.setattr(dispatch, "RECORDING_BACKOFF", 0.01)
    token = uuid.uuid4()
    delivery = DeliveryFactory(
        lease_token=token, leased_until=timezone.now() + timedelta(minutes=5)
    )
    ended = []
    for status in (500, 502):
        item = dispatch.SendItem(delivery, token, dispatch.AUTOMATIC, start_by=0)
        item.request = http.OutgoingRequest(delivery.subscription.url, {}, b"{}")
        ended.append((item, http.Outcome(status_code=status)))
    real, calls = dispatch._record_group, []

    def second_fails_once(items, token, trigger):
        calls.append(len(items))
        if len(calls) == 2:
            raise OperationalError("deadlock found when trying to get lock")
        return real(items, token, trigger)

    monkeypatch.setattr(dispatch, "_record_group", second_fails_once)
    dispatch.record_ended(ended)
    assert calls == [1, 1, 1]
    codes = DeliveryAttempt.objects.filter(delivery=delivery).values_list(
        "response_status_code", flat=True
    )
    assert sorted(codes) == [500, 502]


def test_failures_recorded_together_each_keep_their_own_retry_time():
    """A group whose deliveries failed alike but retry at different times is written by one
    UPDATE (``dispatch._save_states``, plain SQL): each row gets its own next attempt, its
    count and its lease released, on every database; the attempts come back saved."""
    import uuid
    from datetime import timedelta

    from django.db import connection

    from tests.factories import DeliveryFactory
    from webhooks import delivery as http

    token, at = uuid.uuid4(), _now()
    deliveries = [
        DeliveryFactory(lease_token=token, leased_until=at + timedelta(minutes=5)) for _ in range(3)
    ]
    items = [
        (
            d,
            http.OutgoingRequest(d.subscription.url, {}, b"{}"),
            http.Outcome(
                status_code=503,
                headers={"Retry-After": str(60 * (n + 1))},
                error_kind=DeliveryAttempt.ErrorKind.HTTP_5XX,
                error_message="The receiver answered 503.",
            ),
            at,
        )
        for n, d in enumerate(deliveries)
    ]
    attempts = dispatch.record_outcomes(items, token)
    for n, d in enumerate(deliveries):
        d.refresh_from_db()
        assert d.status == Delivery.Status.PENDING and d.attempt_count == 1
        assert d.next_attempt_at == at + timedelta(seconds=60 * (n + 1))
        assert d.lease_token is None and d.leased_until is None
        assert d.last_status_code == 503 and d.last_attempt_at == at
    assert DeliveryAttempt.objects.filter(number=1, succeeded=False).count() == 3
    if connection.features.can_return_rows_from_bulk_insert:
        assert {a.pk for a in attempts} == set(DeliveryAttempt.objects.values_list("pk", flat=True))


def test_a_group_of_successes_is_recorded_in_four_statements():
    """The deliveries' lock reads their webhooks' failure streaks too: recording successes
    is the lock, the attempts, the hourly counts and the new states, and no read of the
    webhooks (a webhook with a streak still has it ended: ``test_delivery``)."""
    import uuid
    from datetime import timedelta

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.factories import DeliveryFactory
    from webhooks import delivery as http

    token, at = uuid.uuid4(), _now()
    deliveries = [
        DeliveryFactory(lease_token=token, leased_until=at + timedelta(minutes=5)) for _ in range(3)
    ]
    ok = http.Outcome(status_code=204)
    items = [(d, http.OutgoingRequest(d.subscription.url, {}, b"{}"), ok, at) for d in deliveries]
    with CaptureQueriesContext(connection) as queries:
        dispatch.record_outcomes(items, token)
    statements = _statements(queries)
    assert len(statements) == 4, statements
    assert Delivery.objects.filter(status=Delivery.Status.SUCCEEDED).count() == 3


def test_failures_across_many_webhooks_are_recorded_in_six_statements(settings):
    """A group of failures (a shared host down) is the deliveries' lock, which counts each
    one's automatic tries as well, the attempts, the hourly counts, the new states, the
    webhooks' lock and one UPDATE of every webhook's streak: six statements for any number
    of webhooks. Each webhook keeps its own streak, each delivery its own retry step."""
    import uuid
    from datetime import timedelta

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.factories import DeliveryFactory
    from webhooks import delivery as http

    settings.WEBHOOKS_RETRY_SCHEDULE = [10, 100, 1000]
    token, at = uuid.uuid4(), _now()
    since = at - timedelta(hours=1)
    deliveries = [
        DeliveryFactory(lease_token=token, leased_until=at + timedelta(minutes=5)) for _ in range(6)
    ]
    # Webhook n has failed n times in a row, since an hour ago; delivery n has been tried
    # automatically n % 3 times before (and by hand once more, which is no step).
    for n, d in enumerate(deliveries):
        type(d.subscription).objects.filter(pk=d.subscription_id).update(
            consecutive_failures=n, failing_since=since if n else None
        )
        for number in range(n % 3):
            DeliveryAttempt.objects.create(delivery=d, number=number + 1, created_at=since)
        DeliveryAttempt.objects.create(
            delivery=d, number=n % 3 + 1, trigger=DeliveryAttempt.Trigger.MANUAL, created_at=since
        )
        Delivery.objects.filter(pk=d.pk).update(attempt_count=n % 3 + 1)
    failed = http.Outcome(
        status_code=500,
        error_kind=DeliveryAttempt.ErrorKind.HTTP_5XX,
        error_message="The receiver answered 500.",
    )
    items = [
        (d, http.OutgoingRequest(d.subscription.url, {}, b"{}"), failed, at) for d in deliveries
    ]
    recording = _now()
    with CaptureQueriesContext(connection) as queries:
        dispatch.record_outcomes(items, token)
    statements = _statements(queries)
    assert len(statements) == 6, statements
    for n, d in enumerate(deliveries):
        d.refresh_from_db()
        d.subscription.refresh_from_db()
        assert d.subscription.consecutive_failures == n + 1
        if n:  # the streak goes on
            assert d.subscription.failing_since == since
        else:  # a streak starts
            assert recording <= d.subscription.failing_since <= _now()
        assert d.subscription.is_active
        assert d.status == Delivery.Status.PENDING
        assert d.next_attempt_at == at + timedelta(seconds=[10, 100, 1000][n % 3])
