"""Demo organisations and data, a demo admin, and a webhook of each organisation to its
inbox on the demo receiver. Safe to run again: it only adds what is missing."""

from django.core.management.base import BaseCommand

from example_project.demo import seed
from webhooks import plans
from webhooks.portal import magic_link

#: How long the printed magic link can be opened: long enough to run the demo in a day.
DEMO_LINK_MAX_AGE = 24 * 3600


class Command(BaseCommand):
    help = (
        "Create the demo organisations, data, admin user and demo-receiver webhooks (idempotent)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--receiver-base",
            default=seed.DEFAULT_RECEIVER_BASE,
            help="Where the web server answers (default %(default)s).",
        )

    def handle(self, *args, receiver_base, **options):
        organisations = seed.ensure_organisations()
        admin, created = seed.ensure_admin()
        staff = seed.ensure_staff()
        subscriptions = seed.ensure_subscriptions(receiver_base, owner=admin)
        base = receiver_base.rstrip("/")
        self.stdout.write(f"Demo organisations: {', '.join(o.name for o in organisations)}.")
        if created:
            self.stdout.write(
                f"Demo admin created: username {seed.ADMIN_USERNAME!r}, "
                f"password {seed.ADMIN_PASSWORD!r}."
            )
        else:
            self.stdout.write(
                f"Demo admin: username {seed.ADMIN_USERNAME!r} (already there; its password "
                f"was {seed.ADMIN_PASSWORD!r} unless you changed it)."
            )
        for user, org, created in staff:
            login = f"username {user.username!r}"
            password = next(p for name, p, _ in seed.STAFF if name == user.username)
            if created:
                self.stdout.write(f"Staff of {org.name} created: {login}, password {password!r}.")
            else:
                self.stdout.write(
                    f"Staff of {org.name}: {login} (already there; its password was "
                    f"{password!r} unless you changed it)."
                )
        for sub in subscriptions:
            self.stdout.write(f"Webhook for {sub.scope}: all events -> {sub.url}")
        self.stdout.write(
            "\nWhere to look once the server runs:\n"
            f"  admin           {base}/admin/  (login {seed.ADMIN_USERNAME} / "
            f"{seed.ADMIN_PASSWORD})\n"
            f"{customer_lines(organisations, staff, base)}"
            f"  demo receiver   {base}/demo-receiver/{organisations[0].slug}/\n"
            f"  API             {base}/api/webhooks/  (docs {base}/api/docs/; a token: "
            f".venv/bin/python manage.py drf_create_token {seed.STAFF[0][0]})\n"
            "  make events     .venv/bin/python manage.py simulate_activity   "
            "(in another terminal)\n"
        )


def customer_lines(organisations, staff, base: str) -> str:
    """Where a customer of the first Pro organisation signs in, and a magic link that opens
    its webhooks without signing in (single use, valid for a day: a person clicks it)."""
    customer = next((o for o in organisations if plans.allows(o.scope)), None)
    if customer is None:
        return ""
    passwords = {name: password for name, password, _ in seed.STAFF}
    manager = next((user for user, org, _ in staff if org == customer), None)
    lines = ""
    if manager is not None:
        lines += (
            f"  customer login  {base}/accounts/login/  (login {manager.username} / "
            f"{passwords[manager.username]}: Settings > Integrations > Webhooks)\n"
        )
    link = magic_link(customer.scope, max_age=DEMO_LINK_MAX_AGE, base_url=base)
    return lines + (
        f"  magic link      {link}\n"
        f"                  ({customer.name}'s webhooks without signing in: opens once, "
        "within 24 h, in a browser not signed in here)\n"
    )
