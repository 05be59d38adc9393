"""``migrate`` of this app alone, to a given migration (a rollback rehearsed on a new
database, a CI step), works, and a later full ``migrate`` adds the schedules."""

import os

import pytest

from tests.test_health import manage


@pytest.mark.skipif(bool(os.environ.get("DATABASE_URL")), reason="a new SQLite file each time")
def test_migrating_this_app_alone_to_an_earlier_migration_on_a_new_database(tmp_path):
    database_url = f"sqlite:///{tmp_path / 'new.sqlite3'}"
    partial = manage("migrate", "webhooks", "0015", "--noinput", database_url=database_url)
    assert partial.returncode == 0, partial.stderr[-2000:]

    full = manage("migrate", "--noinput", database_url=database_url)
    assert full.returncode == 0, full.stderr[-2000:]
    script = (
        "from django_q.models import Schedule;"
        "print(sorted(Schedule.objects.values_list('func', flat=True)))"
    )
    listed = manage("shell", "-c", script, database_url=database_url)
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert "webhooks.tasks.sweep" in listed.stdout and "webhooks.tasks.purge" in listed.stdout
