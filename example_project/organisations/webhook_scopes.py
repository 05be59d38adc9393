"""The organisations a superuser can give a webhook to in the admin (``WEBHOOKS_SCOPE_CHOICES``)."""

from .models import Organisation


def scope_choices() -> list[tuple[str, str]]:
    """Pro organisations only: webhooks are a Pro feature (a webhook of a former Pro
    customer keeps its organisation; the admin form adds it back to the list)."""
    return [
        (org.scope, org.name) for org in Organisation.objects.filter(is_pro=True).order_by("name")
    ]
