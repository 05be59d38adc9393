"""Staff of one organisation see and reach only its webhooks and deliveries."""

import pytest

from tests.admin.helpers import DELIVERIES_URL, change_url, seed
from tests.factories import SubscriptionFactory
from webhooks.models import Delivery, Subscription

pytestmark = pytest.mark.django_db

WEBHOOKS_URL = "/admin/webhooks/subscription/"


@pytest.fixture
def two_tenants(acme, globex):
    ours = SubscriptionFactory(scope=acme.scope, all_events=True, description="acme hook")
    theirs = SubscriptionFactory(scope=globex.scope, all_events=True, description="globex hook")
    return ours, theirs, seed(ours, 1)[0], seed(theirs, 1)[0]


def listed(client, url):
    return set(client.get(url).context["cl"].result_list)


def test_staff_see_only_their_organisations_webhooks_and_deliveries(acme_client, two_tenants):
    ours, theirs, our_delivery, their_delivery = two_tenants
    assert listed(acme_client, WEBHOOKS_URL) == {ours}
    assert listed(acme_client, DELIVERIES_URL) == {our_delivery}
    html = acme_client.get(DELIVERIES_URL).content.decode()
    assert "acme hook" in html and "globex hook" not in html  # nor in the webhook filter


def test_superusers_see_every_organisation(admin_client, two_tenants):
    ours, theirs, our_delivery, their_delivery = two_tenants
    assert listed(admin_client, WEBHOOKS_URL) == {ours, theirs}
    assert listed(admin_client, DELIVERIES_URL) == {our_delivery, their_delivery}


@pytest.mark.parametrize("suffix", ["change/", "history/", "delete/"])
def test_another_organisations_webhook_cannot_be_reached_by_url(acme_client, two_tenants, suffix):
    _, theirs, _, _ = two_tenants
    response = acme_client.get(f"{WEBHOOKS_URL}{theirs.pk}/{suffix}")
    assert response.status_code in (302, 404)
    assert b"globex hook" not in response.content
    if response.status_code == 302:
        assert response["Location"] == "/admin/"


def test_another_organisations_webhook_cannot_be_changed_or_acted_on(
    acme_client, two_tenants, receiver
):
    _, theirs, _, their_delivery = two_tenants
    secret, url = theirs.secret, theirs.url
    acme_client.post(change_url(theirs), {"url": receiver.url, "all_events": "on"})
    for action in ["send-test", "rotate-secret", "recover"]:
        response = acme_client.post(f"{WEBHOOKS_URL}{theirs.pk}/{action}/", {"since": "2020-01-01"})
        assert response.status_code == 404
    theirs.refresh_from_db()
    assert (theirs.secret, theirs.url) == (secret, url) and receiver.requests == []


def test_another_organisations_delivery_cannot_be_seen_or_resent(acme_client, two_tenants):
    _, _, _, their_delivery = two_tenants
    response = acme_client.get(change_url(their_delivery))
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert acme_client.post(change_url(their_delivery)[:-7] + "resend/").status_code == 404
    acme_client.post(
        DELIVERIES_URL, {"action": "resend_selected", "_selected_action": [str(their_delivery.pk)]}
    )
    assert not their_delivery.attempts.exists()


def test_staff_of_no_organisation_see_nothing(client, two_tenants, django_user_model):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("drifter", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename="view_subscription"))
    client.force_login(user)
    assert listed(client, WEBHOOKS_URL) == set()


def test_model_permissions_are_honoured(client, acme, two_tenants, django_user_model):
    from example_project.organisations.models import Membership

    user = django_user_model.objects.create_user("nobody", password="pw", is_staff=True)
    Membership.objects.create(user=user, organisation=acme)
    client.force_login(user)
    assert client.get(WEBHOOKS_URL).status_code == 403
    assert client.get(DELIVERIES_URL).status_code == 403
    assert client.get(WEBHOOKS_URL + "add/").status_code == 403
    ours = two_tenants[0]
    assert client.post(f"{WEBHOOKS_URL}{ours.pk}/send-test/").status_code == 403
    assert Subscription.objects.count() == 2


def test_deleting_a_webhook_takes_its_delivery_log_along(acme_client, two_tenants, commit):
    ours, _, our_delivery, their_delivery = two_tenants
    page = acme_client.get(f"{WEBHOOKS_URL}{ours.pk}/delete/")
    assert page.status_code == 200
    assert "its delivery log: 1 delivery, 0 attempts" in page.content.decode()
    assert not page.context["perms_lacking"]
    with commit():  # the log goes by a task once the deletion commits
        response = acme_client.post(f"{WEBHOOKS_URL}{ours.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert list(Subscription.objects.all()) == [two_tenants[1]]
    assert not Delivery.objects.filter(pk=our_delivery.pk).exists()
    assert Delivery.objects.filter(pk=their_delivery.pk).exists()


def test_bulk_delete_is_limited_to_the_users_organisation(acme_client, two_tenants):
    ours, theirs, _, _ = two_tenants
    acme_client.post(
        WEBHOOKS_URL,
        {"action": "delete_selected", "_selected_action": [ours.pk, theirs.pk], "post": "yes"},
    )
    assert list(Subscription.objects.all()) == [theirs]
