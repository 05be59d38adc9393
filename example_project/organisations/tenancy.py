"""The example platform's tenancy rule for webhooks: one organisation per user."""

from webhooks.tenancy import ALL_SCOPES

from .models import Membership, scope_of

#: A scope that matches no subscription or event: users of no organisation see nothing.
NO_SCOPE = "none"


def scope_for_user(user) -> str | None:
    if user.is_superuser:
        return ALL_SCOPES
    membership = Membership.objects.filter(user=user).only("organisation_id").first()
    return scope_of(membership.organisation_id) if membership else NO_SCOPE
