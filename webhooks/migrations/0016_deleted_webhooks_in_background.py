"""A webhook is deleted at once, its delivery log after it in the background (issue 23):

- ``DeletedWebhook``: the webhooks deleted whose logs are still being deleted;
- no database constraint on a delivery's webhook any more (dropping a constraint is quick
  on PostgreSQL and MariaDB; SQLite copies the deliveries table once), so the webhook's
  row can go before its log;
- no index of a delivery's webhook alone, nor of its event alone (other indexes start
  with each): two indexes fewer to write per delivery;
- no database constraint on an hourly health row's webhook: recording an outcome of a
  webhook deleted a moment before must not fail;
- time-ordered ids (UUID version 7) for new events and deliveries (no change in the
  database).
"""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

import webhooks.ids


def event_indexes(schema_editor, model) -> list[str]:
    """The names of the indexes of ``event_id`` alone (Django named it; look it up)."""
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, model._meta.db_table)
    return [
        name
        for name, about in found.items()
        if about["columns"] == ["event_id"]
        and about["index"]
        and not (about["unique"] or about["primary_key"] or about["foreign_key"])
    ]


def drop_event_index(apps, schema_editor):
    model = apps.get_model("webhooks", "Delivery")
    for name in event_indexes(schema_editor, model):
        schema_editor.execute(schema_editor._delete_index_sql(model, name))


def create_event_index(apps, schema_editor):
    model = apps.get_model("webhooks", "Delivery")
    if not event_indexes(schema_editor, model):
        field = model._meta.get_field("event")
        schema_editor.execute(schema_editor._create_index_sql(model, fields=[field]))


class Migration(migrations.Migration):

    dependencies = [
        ('webhooks', '0015_webhook_list_indexes'),
    ]

    operations = [
        migrations.CreateModel(
            name='DeletedWebhook',
            fields=[
                ('subscription_id', models.UUIDField(primary_key=True, serialize=False)),
                ('deleted_at', models.DateTimeField(default=django.utils.timezone.now)),
            ],
        ),
        # The event's index only. Django's AlterField would also drop and add again the
        # event's foreign key, which validates every delivery (PostgreSQL) or copies the
        # table (MariaDB): minutes, writes blocked, on a big log.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='delivery',
                    name='event',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='deliveries', to='webhooks.event'),
                ),
            ],
            database_operations=[migrations.RunPython(drop_event_index, create_event_index)],
        ),
        migrations.AlterField(
            model_name='delivery',
            name='subscription',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='deliveries', to='webhooks.subscription'),
        ),
        migrations.AlterField(
            model_name='healthhour',
            name='subscription',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='webhooks.subscription'),
        ),
        # Time-ordered ids for new events and deliveries (``webhooks.ids``): Python only,
        # nothing changes in the database.
        migrations.AlterField(
            model_name='delivery',
            name='id',
            field=models.UUIDField(default=webhooks.ids.uuid7, editable=False, primary_key=True, serialize=False),
        ),
        migrations.AlterField(
            model_name='event',
            name='id',
            field=models.UUIDField(default=webhooks.ids.uuid7, editable=False, primary_key=True, serialize=False),
        ),
    ]
