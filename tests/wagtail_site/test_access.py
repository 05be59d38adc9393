"""Who may use webhooks on a Wagtail site, in Wagtail's admin, the Django admin and the API.

The rule: a user's rights are their permissions (and their scope), the same on every
surface; Wagtail's admin also needs Wagtail's own admin access, and the Django admin, a
staff tool, needs ``is_staff`` — except for Wagtail's Administrators (superusers whom
Wagtail does not make staff), whom it admits as the superusers they are.
"""

from tests.wagtail_site import skip_unless_wagtail_site

skip_unless_wagtail_site()

import pytest  # noqa: E402
from django.contrib.auth.models import Group, Permission  # noqa: E402
from django.test import Client  # noqa: E402

from webhooks.models import Subscription  # noqa: E402

SCREEN = "/admin/webhooks/"
DJANGO_ADMIN = "/django-admin/webhooks/subscription/"
API = "/api/webhooks/subscriptions/"


@pytest.fixture
def site_webhook(db):
    return Subscription.objects.create(url="https://hooks.example.com/site", all_events=True)


def permissions(*codenames):
    return Permission.objects.filter(
        content_type__app_label__in=["webhooks", "wagtailadmin"], codename__in=codenames
    )


def client_for(django_user_model, username, *, superuser=False, perms=()):
    """A user made as Wagtail's user editor makes them: never ``is_staff``."""
    user = django_user_model.objects.create_user(username, password="pw", is_superuser=superuser)
    if perms:
        group = Group.objects.create(name=f"{username}'s group")
        group.permissions.set(permissions(*perms))
        user.groups.add(group)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def administrator(django_user_model):
    return client_for(django_user_model, "ada", superuser=True)


@pytest.fixture
def editor(django_user_model):
    return client_for(django_user_model, "ed", perms=["access_admin"])


@pytest.fixture
def webhook_manager(django_user_model):
    return client_for(
        django_user_model,
        "mo",
        perms=["access_admin", "view_subscription", "change_subscription", "add_subscription"],
    )


@pytest.fixture
def webhook_viewer(django_user_model):
    return client_for(django_user_model, "vi", perms=["access_admin", "view_subscription"])


def test_webhooks_is_in_wagtails_settings_menu_for_those_who_may_use_it(
    administrator, editor, webhook_manager
):
    for client in (administrator, webhook_manager):
        home = client.get("/admin/")
        assert home.status_code == 200
        assert b'"/admin/webhooks/"' in home.content  # the sidebar's menu, as Wagtail sends it
    assert b'"/admin/webhooks/"' not in editor.get("/admin/").content


def test_the_screen_shows_the_sites_webhooks_in_wagtails_layout(administrator, site_webhook):
    Subscription.objects.create(url="https://hooks.example.com/a-tenants", scope="acme")
    page = administrator.get(SCREEN)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="wagtail-sidebar"' in html  # Wagtail's layout around the portal's page
    assert 'class="whp"' in html
    assert "https://hooks.example.com/site" in html
    assert "a-tenants" not in html  # a single site's screen: the site's own webhooks only
    # Its links stay in Wagtail's admin, though the customers' portal is mounted too.
    assert 'href="/admin/webhooks/deliveries/"' in html
    assert "/settings/webhooks/" not in html
    for section in ("deliveries/", "events/", "new/"):
        assert administrator.get(SCREEN + section).status_code == 200, section


def test_a_wagtail_administrator_has_every_right_on_every_surface(
    administrator, site_webhook, settings
):
    assert administrator.get(SCREEN).status_code == 200
    assert administrator.get(f"{SCREEN}{site_webhook.pk}/edit/").status_code == 200
    assert administrator.get(DJANGO_ADMIN).status_code == 200  # not sent to the login page
    assert administrator.get(f"{DJANGO_ADMIN}{site_webhook.pk}/change/").status_code == 200
    assert administrator.get(API).json()["count"] == 1
    created = administrator.post(
        API, {"url": "http://127.0.0.1:9/new", "all_events": True}, "application/json"
    )
    assert created.status_code == 201, created.content

    settings.WEBHOOKS_WAGTAIL_ADMINS_IN_DJANGO_ADMIN = False  # the host keeps it to staff
    assert administrator.get(DJANGO_ADMIN).status_code == 302


def test_an_editor_without_webhook_permissions_has_none_anywhere(editor, site_webhook):
    assert editor.get("/admin/").status_code == 200  # may use Wagtail's admin…
    assert editor.get(SCREEN).status_code == 403  # …but not its webhooks
    assert editor.get(f"{SCREEN}new/").status_code == 403
    assert editor.get(DJANGO_ADMIN)["Location"].startswith("/django-admin/login/")
    assert editor.get(API).status_code == 403


def test_a_webhook_manager_group_made_in_wagtail_manages_the_sites_webhooks(
    webhook_manager, site_webhook
):
    assert webhook_manager.get(SCREEN).status_code == 200
    added = webhook_manager.post(
        f"{SCREEN}new/",
        {"url": "http://127.0.0.1:9/added", "all_events": "on", "description": "CRM"},
    )
    assert added.status_code == 302, added.content.decode()[:2000]
    webhook = Subscription.objects.get(url="http://127.0.0.1:9/added")
    assert webhook.scope == ""  # the site's own
    assert added["Location"] == f"{SCREEN}{webhook.pk}/"  # stays in Wagtail's admin
    assert webhook_manager.get(API).json()["count"] == 2  # the same rights in the API
    # The Django admin stays a staff tool: a manager is no staff member.
    assert webhook_manager.get(DJANGO_ADMIN).status_code == 302


def test_view_permission_alone_looks_but_changes_nothing(webhook_viewer, site_webhook):
    assert webhook_viewer.get(SCREEN).status_code == 200
    assert webhook_viewer.get(f"{SCREEN}new/").status_code == 403
    assert webhook_viewer.post(f"{SCREEN}{site_webhook.pk}/disable/").status_code == 403
    site_webhook.refresh_from_db()
    assert site_webhook.is_active


def test_visitors_are_sent_to_wagtails_login(db):
    response = Client().get(SCREEN)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
