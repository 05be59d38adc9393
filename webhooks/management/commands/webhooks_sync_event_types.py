from django.core.management.base import BaseCommand

from webhooks.registry import sync_event_types


class Command(BaseCommand):
    help = "Make the event type table match the event types declared in code."

    def handle(self, *args, **options):
        created, updated = sync_event_types()
        self.stdout.write(f"{created} event types created, {updated} updated.")
