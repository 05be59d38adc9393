"""``HealthHour``: each webhook's attempts per hour and how many succeeded, what its success
rates are summed from (``webhooks.health_hours``), filled for the last 7 days and an hour
from the attempts already stored, one hour of them at a time (at 10M attempts, about
900,000 read in 170 grouped queries). Workers of the version before this one do not count
their attempts: stop them while this runs, or the hours they record in meanwhile are short."""

import django.db.models.deletion
from django.db import migrations, models
from django.utils import timezone


def fill(apps, schema_editor):
    from webhooks import health_hours

    health_hours.backfill(
        apps.get_model("webhooks", "HealthHour"),
        apps.get_model("webhooks", "DeliveryAttempt"),
        timezone.now(),
    )


class Migration(migrations.Migration):
    dependencies = [
        ("webhooks", "0013_scale_indexes"),
    ]

    operations = [
        migrations.CreateModel(
            name="HealthHour",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("hour", models.DateTimeField()),
                ("attempts", models.IntegerField(default=0)),
                ("succeeded", models.IntegerField(default=0)),
                (
                    "subscription",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="webhooks.subscription",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("subscription", "hour"), name="webhooks_health_hour"
                    )
                ],
            },
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
    ]
