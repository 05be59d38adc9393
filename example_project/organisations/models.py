"""The platform's customers (tenants) and who belongs to which."""

from django.conf import settings
from django.db import models


class Organisation(models.Model):
    name = models.CharField(max_length=200, unique=True)
    slug = models.SlugField(unique=True)
    is_pro = models.BooleanField(default=True, help_text="Only Pro customers may use webhooks.")

    def __str__(self) -> str:
        return self.name

    @property
    def scope(self) -> str:
        """The webhooks scope of this organisation's events and subscriptions."""
        return scope_of(self.pk)


def scope_of(organisation_id) -> str:
    return f"org:{organisation_id}"


class Membership(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="membership"
    )
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="members")

    def __str__(self) -> str:
        return f"{self.user} @ {self.organisation}"
