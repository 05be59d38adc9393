"""Demo data for the example platform: organisations, reference data, an admin, webhooks.

Everything here is idempotent: running it twice changes nothing the second time.
Nothing here raises an event; ``scenario.py`` does that.
"""

from __future__ import annotations

from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import transaction

from example_project.authoring.models import Subject, TagGroup
from example_project.organisations.models import Membership, Organisation
from example_project.store.models import Product
from webhooks.models import Subscription

DEMO_ORGANISATIONS = [
    ("Northwind Academy", "northwind"),
    ("Contoso Assessments", "contoso"),
]
SUBJECTS = ["Algebra", "Geometry", "Reading"]
TAG_GROUPS = [("Year group", True), ("Difficulty", False)]
PRODUCTS = [("Exam voucher", Decimal("25.00")), ("Revision course", Decimal("49.00"))]
ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "admin"
DEFAULT_RECEIVER_BASE = "http://127.0.0.1:8000"
#: One member of staff per demo organisation, who manages its webhooks (the README's API
#: examples log in as them): (username, password, organisation slug).
STAFF = [("alice", "alice", "northwind"), ("bob", "bob", "contoso")]
WEBHOOK_MANAGERS = "Webhook managers"


def receiver_url(base: str, organisation: Organisation) -> str:
    return f"{base.rstrip('/')}/demo-receiver/{organisation.slug}/"


@transaction.atomic
def ensure_organisations() -> list[Organisation]:
    organisations = []
    for name, slug in DEMO_ORGANISATIONS:
        org, _ = Organisation.objects.get_or_create(slug=slug, defaults={"name": name})
        organisations.append(org)
        for subject in SUBJECTS:
            Subject.objects.get_or_create(organisation=org, name=subject)
        for group, authors_may_add in TAG_GROUPS:
            TagGroup.objects.get_or_create(
                organisation=org, name=group, defaults={"authors_may_add_values": authors_may_add}
            )
        for product, price in PRODUCTS:
            Product.objects.get_or_create(organisation=org, name=product, defaults={"price": price})
    return organisations


def ensure_admin() -> tuple[object, bool]:
    """The demo superuser (no organisation: it sees every tenant). Returns (user, created)."""
    User = get_user_model()
    user = User.objects.filter(username=ADMIN_USERNAME).first()
    if user is not None:
        return user, False
    user = User.objects.create_superuser(ADMIN_USERNAME, "admin@example.com", ADMIN_PASSWORD)
    return user, True


def webhook_managers() -> Group:
    """The group of the members who manage their organisation's webhooks: every permission
    of the webhooks app (the API, like the admin, refuses members without them)."""
    group, _ = Group.objects.get_or_create(name=WEBHOOK_MANAGERS)
    group.permissions.add(*Permission.objects.filter(content_type__app_label="webhooks"))
    return group


@transaction.atomic
def ensure_staff() -> list[tuple[object, Organisation, bool]]:
    """A member of staff of each demo organisation, in the "Webhook managers" group (every
    permission of the webhooks app: they see and manage their organisation's webhooks in the
    admin and through the API). Returns [(user, organisation, created)]."""
    managers = webhook_managers()
    User = get_user_model()
    staff = []
    for username, password, slug in STAFF:
        org = Organisation.objects.get(slug=slug)
        user = User.objects.filter(username=username).first()
        created = user is None
        if created:
            user = User.objects.create_user(
                username, f"{username}@{slug}.example", password, is_staff=True
            )
            # bulk_create sends no post_save: staff accounts are not platform sign-ups, so
            # seeding raises no `user.registered` (nothing here raises an event).
            Membership.objects.bulk_create([Membership(user=user, organisation=org)])
        user.groups.add(managers)
        staff.append((user, org, created))
    return staff


@transaction.atomic
def ensure_subscriptions(base: str = DEFAULT_RECEIVER_BASE, owner=None) -> list[Subscription]:
    """One webhook per demo organisation, to its inbox on the demo receiver, for all events.

    The demo webhook of an organisation is the one pointing at its inbox path; seeding again
    with another ``base`` (``make run PORT=8001``) moves it there rather than adding one.
    """
    subscriptions = []
    for org in Organisation.objects.filter(slug__in=[slug for _, slug in DEMO_ORGANISATIONS]):
        url = receiver_url(base, org)
        inbox = f"/demo-receiver/{org.slug}/"
        sub = (
            Subscription.objects.filter(scope=org.scope, url__endswith=inbox)
            .order_by("created_at")
            .first()
        )
        if sub is None:
            sub = Subscription.objects.create(
                scope=org.scope,
                url=url,
                description=f"Demo receiver of {org.name}",
                all_events=True,
                owner=owner,
            )
        elif sub.url != url:
            sub.url = url
            sub.save(update_fields=["url", "updated_at"])
        subscriptions.append(sub)
    return subscriptions
