"""The organisations a superuser can give a webhook to in the admin (``WEBHOOKS_SCOPE_CHOICES``)."""

from .models import Organisation


def scope_choices() -> list[tuple[str, str]]:
    """Pro organisations only: webhooks are a Pro feature (a webhook of a former Pro
    customer keeps its organisation; the admin form adds it back to the list)."""
    return [
        (org.scope, org.name) for org in Organisation.objects.filter(is_pro=True).order_by("name")
    ]


def is_pro(scope: str) -> bool:
    """``WEBHOOKS_PLAN_GATE``: webhooks are a Pro feature. Scopes are ``org:<id>``."""
    prefix, _, organisation_id = str(scope).partition(":")
    if prefix != "org" or not organisation_id.isdigit():
        return False
    return Organisation.objects.filter(pk=int(organisation_id), is_pro=True).exists()


def pro_scopes(scopes: set[str]) -> set[str]:
    """``is_pro`` for many scopes in one query (the gate's ``many``: lists of many
    customers' webhooks ask it once)."""
    ids = {}
    for scope in scopes:
        prefix, _, organisation_id = str(scope).partition(":")
        if prefix == "org" and organisation_id.isdigit():
            ids[int(organisation_id)] = scope
    pro = Organisation.objects.filter(pk__in=list(ids), is_pro=True).values_list("pk", flat=True)
    return {ids[pk] for pk in pro}


is_pro.many = pro_scopes
