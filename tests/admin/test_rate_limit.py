"""A webhook's rate limit in the admin: set, changed, emptied, shown, and refused with the
words the API and the portal use."""

import html

import pytest

from tests.admin.helpers import ADD_URL, change_url, form_errors
from tests.admin.test_webhook_form import form_data
from tests.factories import SubscriptionFactory
from webhooks.models import Subscription
from webhooks.validation import RATE_LIMIT_ACCEPTED

pytestmark = pytest.mark.django_db


def test_a_rate_limit_is_set_on_adding_shown_on_the_page_and_emptied_for_none(admin_client):
    response = admin_client.post(ADD_URL, form_data(rate_limit="25"))
    webhook = Subscription.objects.get()
    assert response.status_code == 302 and webhook.rate_limit == 25
    page = admin_client.get(change_url(webhook)).content.decode()
    assert 'name="rate_limit" value="25"' in page
    assert "messages per second" in page  # the field says what the number means

    data = form_data(rate_limit="")
    admin_client.post(change_url(webhook), data)
    webhook.refresh_from_db()
    assert webhook.rate_limit is None


@pytest.mark.parametrize("typed", ["0", "-3", "2.5", "ten", "10001", "99999999999999999999"])
def test_a_bad_rate_limit_is_refused_with_what_is_accepted_and_nothing_changes(admin_client, typed):
    webhook = SubscriptionFactory(
        url="http://127.0.0.1:9/hook", rate_limit=7, scope=form_data()["scope"], all_events=True
    )
    response = admin_client.post(change_url(webhook), form_data(rate_limit=typed))
    assert response.status_code == 200
    assert list(form_errors(response)) == ["rate_limit"]  # that field, and only it
    [message] = form_errors(response)["rate_limit"]
    assert message.startswith(f"The rate limit must be {RATE_LIMIT_ACCEPTED}; “")
    assert "The rate limit must be" in html.unescape(response.content.decode())  # on the page
    webhook.refresh_from_db()
    assert webhook.rate_limit == 7 and webhook.description != "Grades sync"
