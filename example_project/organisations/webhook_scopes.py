"""The organisations a superuser can give a webhook to in the admin (``WEBHOOKS_SCOPE_CHOICES``)."""

from .models import Organisation


def scope_choices() -> list[tuple[str, str]]:
    return [(org.scope, org.name) for org in Organisation.objects.all()]
