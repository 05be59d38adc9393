"""Indexes that answer a webhook's figures (``webhooks.stats.endpoint``) by themselves.

- ``webhooks_attempt_window`` (delivery, created_at, succeeded): the counts over 24 hours
  and 7 days read it, not the attempt rows. It replaces the plain index on
  ``DeliveryAttempt.delivery``, whose every use it serves (as does the unique
  ``webhooks_attempt_number``): no more indexes to write per attempt than before.
- ``webhooks_delivery_attempted`` gains ``id``, so the join to the attempts reads it alone.
- ``webhooks_delivery_pending`` gains ``status``, so SQLite sees that it covers the backlog
  count.

The plain index on ``delivery`` is dropped by its name in the database (Django's
``AlterField`` would copy the whole attempts table on SQLite to drop one index).
"""

import django.db.models.deletion
from django.db import migrations, models


def _delivery_only_indexes(schema_editor, model) -> list[str]:
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, model._meta.db_table)
    return [
        name
        for name, info in constraints.items()
        if info["index"]
        and not info["unique"]
        and not info["primary_key"]
        and info["columns"] == ["delivery_id"]
    ]


def drop_delivery_index(apps, schema_editor):
    model = apps.get_model("webhooks", "DeliveryAttempt")
    for name in _delivery_only_indexes(schema_editor, model):
        schema_editor.execute(schema_editor._delete_index_sql(model, name))


def restore_delivery_index(apps, schema_editor):
    model = apps.get_model("webhooks", "DeliveryAttempt")
    if not _delivery_only_indexes(schema_editor, model):
        field = model._meta.get_field("delivery")
        schema_editor.execute(schema_editor._create_index_sql(model, fields=[field]))


class Migration(migrations.Migration):
    # After the lead's merge: depends on 0011_subscription_rate_limit instead.
    dependencies = [
        ("webhooks", "0011_subscription_rate_limit"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="deliveryattempt",
            index=models.Index(
                fields=["delivery", "created_at", "succeeded"], name="webhooks_attempt_window"
            ),
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="deliveryattempt",
                    name="delivery",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="attempts",
                        to="webhooks.delivery",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunPython(drop_delivery_index, restore_delivery_index),
            ],
        ),
        migrations.RemoveIndex(model_name="delivery", name="webhooks_delivery_pending"),
        migrations.AddIndex(
            model_name="delivery",
            index=models.Index(
                condition=models.Q(("status", "pending")),
                fields=["subscription", "next_attempt_at", "status"],
                name="webhooks_delivery_pending",
            ),
        ),
        migrations.RemoveIndex(model_name="delivery", name="webhooks_delivery_attempted"),
        migrations.AddIndex(
            model_name="delivery",
            index=models.Index(
                fields=["subscription", "last_attempt_at", "id"],
                name="webhooks_delivery_attempted",
            ),
        ),
    ]
