"""Migration 0017: the event type keeps one index. Every host save that raises an event
writes each index of the event table in the host's transaction; on PostgreSQL
``db_index=True`` had added a pattern-ops twin of the type's index that nothing reads."""

import pytest
from django.db import connection

from tests.test_migration_encrypts import migrate
from webhooks.models import Event

TYPE_INDEX = "webhooks_event_type_94169249"
BEFORE = [("webhooks", "0016_deleted_webhooks_in_background")]
AFTER = [("webhooks", "0017_event_type_one_index")]


def type_indexes() -> set[str]:
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, Event._meta.db_table)
    return {
        name
        for name, about in found.items()
        if about["columns"] == ["type"] and about["index"] and not about["primary_key"]
    }


@pytest.mark.django_db
def test_the_event_type_has_one_index_the_one_the_model_declares():
    # The name the model declares is the one db_index gave it on every database, so the
    # migration changes nothing there but the PostgreSQL twin.
    assert type_indexes() == {TYPE_INDEX}


@pytest.mark.django_db(transaction=True)
def test_the_migration_drops_the_postgresql_pattern_index_and_puts_it_back_in_reverse():
    try:
        migrate(BEFORE)
        before = type_indexes()
        if connection.vendor == "postgresql":
            assert before == {TYPE_INDEX, f"{TYPE_INDEX}_like"}
        else:
            assert before == {TYPE_INDEX}
        migrate(AFTER)
        assert type_indexes() == {TYPE_INDEX}
    finally:
        migrate()  # every app at its latest again, for the tests after this one
