"""Walk a demo organisation through a day on the platform, raising every event type."""

import logging
import shutil
from collections import Counter

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from example_project.demo import scenario, seed
from example_project.organisations.models import Organisation
from webhooks.models import Event
from webhooks.registry import registry

#: Raised on request only (admin / API "send a test event"), not by the platform.
NOT_RAISED_BY_THE_PLATFORM = {"webhook.test"}


class Command(BaseCommand):
    help = (
        "Walk a demo organisation through authoring, publishing, a sitting with pause/resume "
        "and a reopened window, marking, rescoring, registrations, purchases and invites, "
        "raising every event type."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--organisation",
            default=seed.DEMO_ORGANISATIONS[0][1],
            help="Slug of the organisation to simulate (default %(default)s).",
        )

    def handle(self, *args, organisation, **options):
        # One "Enqueued" line per event would bury the progress bar.
        logging.getLogger("django-q").setLevel(logging.WARNING)
        seed.ensure_organisations()
        org = Organisation.objects.filter(slug=organisation).first()
        if org is None:
            raise CommandError(f"No organisation with slug {organisation!r}.")
        steps = scenario.steps()
        started = timezone.now()
        self.stdout.write(f"Simulating activity at {org.name} ({len(steps)} steps):")
        scenario.run(org, on_step=lambda n, step: self.progress(n, len(steps), step.label))
        self.stdout.write("")
        raised = Counter(
            Event.objects.filter(scope=org.scope, occurred_at__gte=started).values_list(
                "type", flat=True
            )
        )
        self.summary(raised)
        self.stdout.write(
            f"\n{len(raised)} event types raised, {sum(raised.values())} events in all. "
            f"The queue workers deliver them to {org.name}'s webhooks: see "
            f"/demo-receiver/{org.slug}/ on the web server."
        )
        missing = sorted(set(registry.event_types) - set(raised) - NOT_RAISED_BY_THE_PLATFORM)
        if missing:
            self.stdout.write(f"Declared but not raised by this scenario: {', '.join(missing)}")

    def progress(self, number: int, total: int, label: str) -> None:
        width = max(10, min(40, shutil.get_terminal_size((80, 20)).columns - 50))
        done = round(width * number / total)
        bar = "#" * done + "." * (width - done)
        self.stdout.write(f"\r[{bar}] {number:>2}/{total} {label[:40]:<40}", ending="")
        self.stdout.flush()

    def summary(self, raised: Counter) -> None:
        by_category = {name: spec.category for name, spec in registry.event_types.items()}
        rows = sorted(raised.items(), key=lambda kv: (by_category.get(kv[0], ""), kv[0]))
        width = max(len(name) for name in raised) if raised else 10
        self.stdout.write(f"\n{'event type':<{width}}  {'category':<20}  count")
        self.stdout.write(f"{'-' * width}  {'-' * 20}  -----")
        for name, count in rows:
            self.stdout.write(f"{name:<{width}}  {by_category.get(name, ''):<20}  {count:>5}")
