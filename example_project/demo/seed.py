"""Demo data for the example platform: organisations, reference data, an admin, webhooks.

Everything here is idempotent: running it twice changes nothing the second time.
Nothing here raises an event; ``scenario.py`` does that.
"""

from __future__ import annotations

from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import transaction

from example_project.authoring.models import Subject, TagGroup
from example_project.organisations.models import Organisation
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


@transaction.atomic
def ensure_subscriptions(base: str = DEFAULT_RECEIVER_BASE, owner=None) -> list[Subscription]:
    """One webhook per demo organisation, to its inbox on the demo receiver, for all events."""
    subscriptions = []
    for org in Organisation.objects.filter(slug__in=[slug for _, slug in DEMO_ORGANISATIONS]):
        sub, _ = Subscription.objects.get_or_create(
            scope=org.scope,
            url=receiver_url(base, org),
            defaults={
                "description": f"Demo receiver of {org.name}",
                "all_events": True,
                "owner": owner,
            },
        )
        subscriptions.append(sub)
    return subscriptions
