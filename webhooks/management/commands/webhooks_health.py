import json
import sys

from django.core.management.base import BaseCommand, CommandError

from webhooks import health

DEFAULTS = health.Thresholds()
THRESHOLDS = ("max_due_age", "max_fanout_age", "max_sweep_age", "min_workers", "worker_window")


class Command(BaseCommand):
    help = (
        "Is the webhook service healthy? Prints a JSON report (or --text) and exits 0 when "
        "healthy, 1 when a check fails, 2 when it cannot tell (the database is down)."
    )

    # The report says what the system checks would (keys included), as JSON and with its
    # exit code: they must not stop the command first.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument(
            "--max-due-age",
            type=float,
            default=DEFAULTS.max_due_age,
            help="Seconds the oldest due delivery may wait (default %(default)s).",
        )
        parser.add_argument(
            "--max-fanout-age",
            type=float,
            default=DEFAULTS.max_fanout_age,
            help="Seconds an event may wait to be fanned out (default %(default)s).",
        )
        parser.add_argument(
            "--max-sweep-age",
            type=float,
            default=DEFAULTS.max_sweep_age,
            help="Seconds since the last sweep (default %(default)s).",
        )
        parser.add_argument(
            "--min-workers",
            type=int,
            default=DEFAULTS.min_workers,
            help="Worker processes that must have been seen (default %(default)s).",
        )
        parser.add_argument(
            "--worker-window",
            type=float,
            default=DEFAULTS.worker_window,
            help="Seconds within which a worker counts as seen (default %(default)s).",
        )
        parser.add_argument("--text", action="store_true", help="A short text report.")

    def handle(self, *args, text, **options):
        for name in THRESHOLDS:
            if options[name] < 0:
                flag = "--" + name.replace("_", "-")
                raise CommandError(f"{flag} must be 0 or more, not {options[name]:g}.")
        thresholds = health.Thresholds(**{name: options[name] for name in THRESHOLDS})
        report = health.platform(thresholds)
        if text:
            self.stdout.write(health.as_text(report))
        else:
            self.stdout.write(json.dumps(report.as_dict(), indent=2))
        if report.exit_code:
            sys.exit(report.exit_code)
