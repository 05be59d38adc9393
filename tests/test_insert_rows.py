"""The fan-out's and the recording's INSERTs (``webhooks.rows.insert_rows``): every value
stored as given, ids read back in order, and on PostgreSQL one parameter per batch."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.factories import DeliveryFactory, EventFactory, SubscriptionFactory
from webhooks import dispatch, outbox, rows
from webhooks.models import Delivery, DeliveryAttempt, Subscription

pytestmark = pytest.mark.django_db

AWKWARD = 'it\'s 100% "quoted" \\ back-slashed, %s %(x)s, {braces}, ünïcødé ✓ 🚀\nnew line'


def _attempt(delivery, number: int, **values) -> DeliveryAttempt:
    fields = {
        "delivery": delivery,
        "number": number,
        "trigger": "automatic",
        "request_url": "https://example.com/hook?a=1&b='2'",
        "request_headers": {"Content-Type": "application/json", "X-Awkward": AWKWARD},
        "request_body_sha256": "a" * 64,
        "response_status_code": 204,
        "response_headers": {},
        "response_body": "",
        "duration_ms": 3,
        "succeeded": True,
        "error_kind": "",
        "error_message": "",
        "created_at": datetime(2026, 12, 6, 16, 1, 2, 345678, tzinfo=UTC),
    }
    return DeliveryAttempt(**{**fields, **values})


def test_every_value_of_an_attempt_is_stored_as_it_was_given():
    delivery = DeliveryFactory()
    given = [
        _attempt(delivery, 1),
        _attempt(
            delivery,
            2,
            request_headers={"nested": {"list": [1, 2.5, None, True]}, "empty": ""},
            response_status_code=None,
            response_headers={"Server": AWKWARD},
            response_body=AWKWARD,
            duration_ms=0,
            succeeded=False,
            error_kind="timeout",
            error_message=AWKWARD,
            created_at=datetime(2026, 1, 2, 3, 4, 5, 1, tzinfo=UTC),
        ),
        _attempt(
            delivery,
            3,
            request_headers="a JSON string, not an object",
            response_headers=[1, "two", {"three": False}],
            created_at=datetime(2026, 7, 1, 12, 30, 0, 999999, tzinfo=ZoneInfo("Asia/Kolkata")),
        ),
    ]
    dispatch._insert_attempts(given)
    fields = [f.attname for f in DeliveryAttempt._meta.concrete_fields]
    for attempt in given:
        stored = DeliveryAttempt.objects.get(pk=attempt.pk)
        assert {f: getattr(stored, f) for f in fields} == {f: getattr(attempt, f) for f in fields}


def test_the_ids_of_a_batch_of_attempts_are_read_back_in_order():
    if not connection.features.can_return_rows_from_bulk_insert:
        pytest.skip("this database does not return the ids of a bulk insert")
    delivery = DeliveryFactory()
    given = [_attempt(delivery, n, duration_ms=n) for n in range(1, 61)]
    dispatch._insert_attempts(given)
    assert all(DeliveryAttempt.objects.get(pk=a.pk).number == a.number for a in given)


def test_deliveries_are_stored_as_given_and_a_second_insert_of_the_same_changes_nothing():
    event, webhook = EventFactory(), SubscriptionFactory()
    now = timezone.now()
    due = now + timedelta(seconds=5, microseconds=7)
    delivery = Delivery(event=event, subscription=webhook, next_attempt_at=due, last_error=AWKWARD)
    outbox._insert_deliveries([delivery], now)
    stored = Delivery.objects.get(pk=delivery.pk)
    assert (stored.next_attempt_at, stored.last_error, stored.created_at) == (due, AWKWARD, now)
    assert stored.lease_token is None and stored.last_status_code is None
    again = Delivery(event=event, subscription=webhook, next_attempt_at=now)
    outbox._insert_deliveries([again], now)  # ON CONFLICT DO NOTHING: one per event and webhook
    assert Delivery.objects.get(event=event).next_attempt_at == due


def test_on_postgresql_a_batch_is_one_parameter_whatever_its_size():
    """psycopg parses a statement with more than 50 parameters again each time: a batch of
    any size is one JSON document, in a statement whose text does not change."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only")
    delivery = DeliveryFactory()
    statements = []
    for first, size in ((1, 3), (100, 40)):
        with CaptureQueriesContext(connection) as queries:
            dispatch._insert_attempts([_attempt(delivery, first + n) for n in range(size)])
        [insert] = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("INSERT")]
        statements.append(insert.split("json_populate_recordset")[0])
    assert statements[0] == statements[1]
    assert DeliveryAttempt.objects.filter(delivery=delivery).count() == 43


def test_a_field_class_of_another_package_prepares_its_own_values():
    """Django's own field types' plain values go into the JSON document as they are; a
    field class defined elsewhere (here the encrypted signing secret) is never bypassed."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only")
    webhook = SubscriptionFactory()
    secret = webhook.signing_secrets()[0]
    fields = [Subscription._meta.get_field(name) for name in ("url", "secret")]
    _, params = rows.insert_rows(Subscription, fields, [webhook], connections["default"])
    assert webhook.url in params[0] and secret not in params[0]


def _lock_read(delivery):
    """The delivery as the recording's lock reads it (``rows.fetch``)."""
    return dispatch._lock_deliveries([delivery.pk])[delivery.pk]


def test_rows_read_back_the_times_the_orm_reads_aware_and_to_the_microsecond():
    at = datetime(2026, 12, 6, 23, 59, 58, 999999, tzinfo=ZoneInfo("Pacific/Auckland"))
    delivery = DeliveryFactory(next_attempt_at=at, last_attempt_at=at + timedelta(days=400))
    read, orm = _lock_read(delivery), Delivery.objects.get(pk=delivery.pk)
    for name in ("next_attempt_at", "last_attempt_at", "created_at", "updated_at"):
        value = getattr(read, name)
        assert value == getattr(orm, name) and value.tzinfo is getattr(orm, name).tzinfo
        assert value.utcoffset() == timedelta(0)
    assert read.next_attempt_at == at and read.next_attempt_at.microsecond == 999999
    assert read.leased_until is None and read.resend_requested_at is None


def test_on_postgresql_times_are_read_by_psycopgs_compiled_loader():
    """Django's own loader parses each time in Python: a fifth of the recording's lock."""
    if connection.vendor != "postgresql":
        pytest.skip("psycopg's loaders: PostgreSQL only")
    loader = rows._timestamp_loader(connections[connection.alias])
    assert loader is not None and not loader.__module__.startswith(("psycopg.", "django."))
    used = []
    register = type(connection.cursor().cursor.adapters).register_loader

    def watched(adapters, key, cls):
        used.append(cls)
        return register(adapters, key, cls)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(type(connection.cursor().cursor.adapters), "register_loader", watched)
        _lock_read(DeliveryFactory())
    assert used == [loader]


def test_without_time_zones_times_are_read_as_django_reads_them(settings):
    settings.USE_TZ = False
    delivery = DeliveryFactory()
    read, orm = _lock_read(delivery), Delivery.objects.get(pk=delivery.pk)
    assert read.created_at == orm.created_at
    assert read.created_at.tzinfo == orm.created_at.tzinfo  # naive on PostgreSQL and SQLite
    if connection.vendor == "postgresql":
        assert read.created_at.tzinfo is None  # Django's loader, not psycopg's


def test_a_choice_is_stored_as_its_value():
    delivery = DeliveryFactory()
    Kind = DeliveryAttempt.ErrorKind
    given = _attempt(
        delivery,
        1,
        trigger=DeliveryAttempt.Trigger.MANUAL,
        error_kind=Kind.TIMEOUT,
        succeeded=False,
    )
    dispatch._insert_attempts([given])
    stored = DeliveryAttempt.objects.filter(pk=given.pk).values("trigger", "error_kind").get()
    assert stored == {"trigger": "manual", "error_kind": "timeout"}
    assert type(stored["trigger"]) is str
