"""Print a portal magic link for one customer (support staff, operators, demos)."""

from django.core.management.base import BaseCommand, CommandError

from webhooks import plans
from webhooks.conf import conf
from webhooks.portal.magic import magic_link


class Command(BaseCommand):
    help = (
        "Print a single-use, expiring link that opens the webhooks portal for one customer "
        "(scope), without signing in."
    )

    def add_arguments(self, parser):
        parser.add_argument("scope", help="The customer's scope, e.g. org:1.")
        parser.add_argument(
            "--read-only", action="store_true", help="The session may look but not change."
        )
        parser.add_argument(
            "--base-url",
            default=None,
            help="Where the site answers, e.g. https://app.example.com (default: a path only).",
        )
        parser.add_argument(
            "--max-age",
            type=float,
            default=None,
            help="Seconds the link can be opened in (default WEBHOOKS_PORTAL_LINK_MAX_AGE, "
            f"now {conf.PORTAL_LINK_MAX_AGE:g}).",
        )

    def handle(self, *args, scope, read_only, base_url, max_age, **options):
        if not plans.allows(scope):
            raise CommandError(
                f"The plan gate (WEBHOOKS_PLAN_GATE) refuses {scope!r}: its plan does not "
                "include webhooks, so the link would be refused."
            )
        try:
            link = magic_link(scope, can_change=not read_only, max_age=max_age, base_url=base_url)
        except ValueError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(link)
