"""A trigram index on the webhooks' URLs, for the admin's search of the delivery log by a
part of a URL (``webhooks.url_search``): PostgreSQL only, when the extension ``pg_trgm``
can be created; otherwise the migration says why and changes nothing (the search works
without it). SQLite and MariaDB: nothing to do."""

from django.db import migrations


def create(apps, schema_editor):
    from webhooks import url_search

    table = apps.get_model("webhooks", "Subscription")._meta.db_table
    url_search.create(schema_editor.connection, table)


def drop(apps, schema_editor):
    from webhooks import url_search

    url_search.drop(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [
        ("webhooks", "0014_health_hours"),
    ]

    operations = [
        migrations.RunPython(create, drop, elidable=False),
    ]
