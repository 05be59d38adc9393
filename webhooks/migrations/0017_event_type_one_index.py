"""The event type keeps one index (issue 23: the host's save).

``db_index=True`` on a text column makes Django add, on PostgreSQL, a ``varchar_pattern_ops``
twin of the index for ``LIKE 'x%'``. Nothing filters event types by pattern, and the
planner used the two alike for ``type = …``; every host save that raises an event wrote
both (58 MB each at 8.5 million events). The twin goes; the plain index, the same one
``db_index`` made, is now declared in ``Event.Meta.indexes`` (no change in the database
but the twin's removal, and none at all on SQLite and MariaDB).
"""

from django.db import migrations, models


def pattern_index(schema_editor, model) -> str:
    column = model._meta.get_field("type").column
    return schema_editor._create_index_name(model._meta.db_table, [column], suffix="_like")


def drop_pattern_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        model = apps.get_model("webhooks", "Event")
        # DROP INDEX IF EXISTS: a database whose twin is gone already is left as it is.
        schema_editor.execute(
            schema_editor._delete_index_sql(model, pattern_index(schema_editor, model))
        )


def create_pattern_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        model = apps.get_model("webhooks", "Event")
        schema_editor.execute(
            schema_editor._create_like_index_sql(model, model._meta.get_field("type"))
        )


class Migration(migrations.Migration):
    dependencies = [
        ("webhooks", "0016_deleted_webhooks_in_background"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="event", name="type", field=models.CharField(max_length=100)
                ),
                migrations.AddIndex(
                    model_name="event",
                    index=models.Index(fields=["type"], name="webhooks_event_type_94169249"),
                ),
            ],
            database_operations=[
                migrations.RunPython(drop_pattern_index, create_pattern_index, elidable=False)
            ],
        ),
    ]
