"""Two indexes on the webhooks, for lists of 100,000 of them (issue 23):

- ``webhooks_subscription_created``: the lists' order, newest first (the admin's, the
  API's), read from an index instead of sorting every webhook for each page;
- a trigram index on their URLs, for the admin's search of the delivery log by a part of a
  URL (``webhooks.url_search``): PostgreSQL only, when the extension ``pg_trgm`` can be
  created; otherwise the migration says why and goes on (the search works without it).
  Nothing of it on SQLite and MariaDB.
"""

from django.db import migrations, models


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
        migrations.AddIndex(
            model_name="subscription",
            index=models.Index(fields=["created_at", "id"], name="webhooks_subscription_created"),
        ),
        migrations.RunPython(create, drop, elidable=False),
    ]
