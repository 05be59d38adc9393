"""No admin URL is an oracle on a secret: filtering on one is refused for everybody."""

import pytest

from tests.admin.helpers import DELIVERIES_URL, seed
from tests.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db

WEBHOOKS_URL = "/admin/webhooks/subscription/"
EVENT_TYPES_URL = "/admin/webhooks/eventtype/"


@pytest.fixture
def webhook(acme):
    sub = SubscriptionFactory(
        scope=acme.scope,
        all_events=True,
        basic_auth_username="u",
        basic_auth_password="hunter2",
        headers={"X-Api-Key": "k-123"},
    )
    seed(sub, 1)
    return sub


@pytest.mark.parametrize(
    "url, lookup",
    [
        (WEBHOOKS_URL, "secret__startswith"),
        (WEBHOOKS_URL, "secret"),
        (WEBHOOKS_URL, "previous_secret__startswith"),
        (WEBHOOKS_URL, "basic_auth_password__startswith"),
        (WEBHOOKS_URL, "headers__icontains"),
        (WEBHOOKS_URL, "owner__password__startswith"),
        (DELIVERIES_URL, "subscription__secret__startswith"),
        (DELIVERIES_URL, "subscription__basic_auth_password__startswith"),
        (DELIVERIES_URL, "subscription__headers__contains"),
        (EVENT_TYPES_URL, "subscriptions__secret__startswith"),
    ],
)
@pytest.mark.parametrize("who", ["viewer_client", "admin_client"])
def test_filtering_on_a_secret_is_refused(request, webhook, url, lookup, who):
    client = request.getfixturevalue(who)
    right = webhook.secret[:8] if "secret" in lookup else "hunter2"[:3]
    for guess in (right, "whsec_zzzz"):
        response = client.get(url, {lookup: guess})
        # Whatever the guess, the same refusal: nothing to tell right from wrong.
        assert response.status_code == 400, (lookup, guess, response.status_code)


def test_plain_filters_still_work(viewer_client, webhook):
    assert viewer_client.get(WEBHOOKS_URL, {"is_active__exact": "1"}).status_code == 200
    assert viewer_client.get(DELIVERIES_URL, {"status__exact": "succeeded"}).status_code == 200


def test_search_does_not_look_into_secrets(admin_client, webhook):
    page = admin_client.get(WEBHOOKS_URL, {"q": webhook.secret[:12]})
    assert page.status_code == 200
    assert f"{webhook.pk}/change/" not in page.content.decode()
    found = admin_client.get(WEBHOOKS_URL, {"q": webhook.description})
    assert f"{webhook.pk}/change/" in found.content.decode()


def test_view_only_staff_never_see_secret_header_values(viewer_client, webhook):
    html = viewer_client.get(f"{WEBHOOKS_URL}{webhook.pk}/change/").content.decode()
    assert "X-Api-Key" in html and "k-123" not in html and "********" in html
