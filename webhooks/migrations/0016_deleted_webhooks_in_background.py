"""A webhook is deleted at once, its delivery log after it in the background (issue 23):

- ``DeletedWebhook``: the webhooks deleted whose logs are still being deleted;
- no database constraint on a delivery's webhook any more (dropping a constraint is quick
  on PostgreSQL and MariaDB; SQLite copies the deliveries table once), so the webhook's
  row can go before its log; and no index of that column alone (three indexes start
  with it), one index fewer to write per delivery.
"""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


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
        migrations.AlterField(
            model_name='delivery',
            name='subscription',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='deliveries', to='webhooks.subscription'),
        ),
    ]
