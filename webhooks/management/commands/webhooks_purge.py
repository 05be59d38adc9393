import time

from django.core.management.base import BaseCommand, CommandError

from webhooks import retention
from webhooks.conf import conf


class Command(BaseCommand):
    help = (
        "Delete deliveries (with their attempts) and events older than the retention "
        "settings (WEBHOOKS_KEEP_SUCCEEDED_DAYS, WEBHOOKS_KEEP_FAILED_DAYS, "
        "WEBHOOKS_KEEP_EVENTS_DAYS), in small transactions. Pending deliveries are kept."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run", action="store_true", help="Only count what would be deleted."
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=None,
            help="Rows per transaction (default: WEBHOOKS_PURGE_BATCH_SIZE, "
            f"{conf.PURGE_BATCH_SIZE}).",
        )
        parser.add_argument(
            "--time-limit",
            type=float,
            default=None,
            help="Stop after this many seconds; the rest is left for the next run.",
        )

    def handle(self, *args, dry_run, batch_size, time_limit, verbosity, **options):
        if batch_size is not None and batch_size < 1:
            raise CommandError(f"--batch-size must be a positive number of rows, not {batch_size}.")
        if time_limit is not None and time_limit <= 0:
            raise CommandError(
                f"--time-limit must be a positive number of seconds, not {time_limit}."
            )
        self.stdout.write(
            "Keeping succeeded deliveries {}, failed deliveries {}, events {}.".format(
                *(
                    "forever" if days is None else f"{days:g} days"
                    for days in (
                        conf.KEEP_SUCCEEDED_DAYS,
                        conf.KEEP_FAILED_DAYS,
                        conf.KEEP_EVENTS_DAYS,
                    )
                )
            )
        )
        if dry_run:
            self.stdout.write(f"Dry run: would delete {retention.count()}.")
            return
        started = time.monotonic()
        last_shown = [started]

        def progress(report):
            # One line a second (every batch with -v 2): visible progress, a readable log.
            now = time.monotonic()
            if verbosity >= 2 or (verbosity >= 1 and now - last_shown[0] >= 1):
                last_shown[0] = now
                self.stdout.write(f"  … {report} deleted so far ({now - started:.0f} s)")

        report = retention.purge(batch_size=batch_size, time_limit=time_limit, progress=progress)
        self.stdout.write(
            f"Deleted {report} in {time.monotonic() - started:.1f} s "
            f"({report.batches} transactions, "
            f"longest {report.longest_transaction_s * 1000:.0f} ms)."
        )
        if not report.finished:
            self.stdout.write("Stopped at the time limit: run it again to delete the rest.")
