"""The example platform's tenancy rule for webhooks: one organisation per user."""

from webhooks.tenancy import ALL_SCOPES, NO_SCOPE

from .models import Membership, scope_of


def scope_for_user(user) -> str | None:
    if user.is_superuser:
        return ALL_SCOPES
    membership = Membership.objects.filter(user=user).only("organisation_id").first()
    # Users of no organisation see nothing (and may create nothing).
    return scope_of(membership.organisation_id) if membership else NO_SCOPE
