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
        unreadable: list = []
        with transaction.atomic(using=database):
            count = reencrypt(Subscription, using=database, unreadable=unreadable)
        self.stdout.write(f"{count} webhooks re-encrypted with the first key.")
        if unreadable:
            self.stderr.write(
                f"{len(unreadable)} webhooks hold secrets that no key of "
                "WEBHOOKS_ENCRYPTION_KEYS decrypts; they were left as stored, and their "
                "deliveries fail until the key that wrote them is put back (then run this "
                "again) or their secrets are set anew (rotate the signing secret, save a new "
                "password and headers): " + ", ".join(str(pk) for pk in unreadable)
            )
