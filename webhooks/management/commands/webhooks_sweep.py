from django.core.management.base import BaseCommand

from webhooks import sweeper


class Command(BaseCommand):
    help = (
        "Re-enqueue events never fanned out, due retries, and deliveries whose worker died. "
        "Runs once, or keeps polling with --duration."
    )

    def add_arguments(self, parser):
        parser.add_argument("--duration", type=float, default=0, help="Seconds to keep polling.")

    def handle(self, *args, duration, **options):
        report = sweeper.run(duration) if duration else sweeper.sweep_once()
        self.stdout.write(
            f"{report.events_fanned_out} events fanned out, "
            f"{report.deliveries_enqueued} deliveries enqueued."
        )
