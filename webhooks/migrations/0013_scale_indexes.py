"""``webhooks_delivery_failed``: the failed deliveries, newest first (the logs' "failed"
filter), partial so that it holds only them and is written only when a delivery gives up.

Built in one scan of the deliveries; on PostgreSQL with millions of rows, a site that cannot
block writes for that long creates it first with ``CREATE INDEX CONCURRENTLY`` (same name
and definition), then runs this migration with ``--fake``.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("webhooks", "0012_stats_covering_indexes"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="delivery",
            index=models.Index(
                condition=models.Q(("status", "failed")),
                fields=["status", "-created_at"],
                name="webhooks_delivery_failed",
            ),
        ),
    ]
