from django.core.management.base import BaseCommand
from django.db import DEFAULT_DB_ALIAS, transaction

from webhooks.encryption import reencrypt
from webhooks.models import Subscription


class Command(BaseCommand):
    help = (
        "Encrypt every webhook's secrets again with the first key of WEBHOOKS_ENCRYPTION_KEYS "
        "(after a key rotation; then the old keys can be removed)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)

    def handle(self, *args, database=DEFAULT_DB_ALIAS, **options):
        with transaction.atomic(using=database):
            count = reencrypt(Subscription, using=database)
        self.stdout.write(f"{count} webhooks re-encrypted with the first key.")
