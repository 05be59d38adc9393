"""Wagtail's group editor offers this app's permissions, so webhook managers are appointed
in Wagtail (no Django admin, no shell)."""

from tests.wagtail_site import skip_unless_wagtail_site

skip_unless_wagtail_site()

import re  # noqa: E402

import pytest  # noqa: E402
from django.contrib.auth.models import Group, Permission  # noqa: E402


@pytest.fixture
def administrator(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("ada", is_superuser=True))
    return client


def offered_permission_ids(html: str) -> set[int]:
    return {int(v) for v in re.findall(r'name="permissions" value="(\d+)"', html)}


def test_the_group_editor_offers_the_webhook_permissions(administrator):
    html = administrator.get("/admin/groups/new/").content.decode()
    offered = offered_permission_ids(html)
    webhooks = Permission.objects.filter(content_type__app_label="webhooks")
    wanted = webhooks.filter(
        content_type__model__in=["subscription", "delivery", "event", "eventtype"]
    )
    assert set(wanted.values_list("pk", flat=True)) <= offered
    for codename in ("view_subscription", "add_subscription", "change_subscription"):
        assert webhooks.get(codename=codename).pk in offered, codename
    # Bookkeeping of the app is nobody's to grant.
    internal = webhooks.filter(content_type__model__in=["heartbeat", "portallinkuse"])
    assert not set(internal.values_list("pk", flat=True)) & offered


def test_a_group_saved_in_the_editor_holds_them(administrator):
    page = administrator.get("/admin/groups/new/")
    data = {"name": "Webhook managers"}
    for formset in page.context["permission_panels"]:
        data.update(management_form(formset))
    wanted = Permission.objects.filter(
        content_type__app_label__in=["webhooks", "wagtailadmin"],
        codename__in=["access_admin", "view_subscription", "change_subscription"],
    )
    data["permissions"] = [str(p.pk) for p in wanted]
    saved = administrator.post("/admin/groups/new/", data)
    assert saved.status_code == 302, saved.content.decode()[:3000]
    group = Group.objects.get(name="Webhook managers")
    assert set(group.permissions.all()) == set(wanted)


def management_form(formset) -> dict:
    prefix = getattr(formset, "prefix", None)
    if prefix is None or not hasattr(formset, "management_form"):
        return {}
    return {
        f"{prefix}-TOTAL_FORMS": "0",
        f"{prefix}-INITIAL_FORMS": "0",
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }
