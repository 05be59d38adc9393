"""Event types: listed with their subscribers, switched on and off, never made by hand."""

from html import unescape

import pytest

from tests.admin.helpers import change_url
from tests.factories import SubscriptionFactory
from webhooks.models import EventType

pytestmark = pytest.mark.django_db

LIST_URL = "/admin/webhooks/eventtype/"


def row_of(response, name):
    return next(o for o in response.context["cl"].result_list if o.name == name)


def test_the_list_shows_name_category_description_subscribers_and_active(admin_client, acme):
    SubscriptionFactory(events=["article.created"])
    SubscriptionFactory(events=["article.created", "article.updated"], scope=acme.scope)
    SubscriptionFactory(all_events=True)
    response = admin_client.get(LIST_URL)
    html = response.content.decode()
    for text in ["article.created", "Articles", "An article was created.", "Subscribers"]:
        assert text in html
    subscribers = response.context["cl"].list_display[3]
    assert subscribers(row_of(response, "article.created")) == 3  # two + one to all events
    assert subscribers(row_of(response, "article.updated")) == 2
    assert subscribers(row_of(response, "article.deleted")) == 1


def test_the_detail_shows_the_example_payload_and_subscribers(admin_client):
    SubscriptionFactory(events=["article.created"])
    event_type = EventType.objects.get(name="article.created")
    response = admin_client.get(change_url(event_type))
    html = unescape(response.content.decode())
    assert '"id": 1' in html and "An article was created." in html
    assert '<div class="readonly">1</div>' in html  # its one subscriber
    assert 'name="name"' not in html  # read-only: only "active" is editable
    assert 'name="is_active"' in html


def test_a_superuser_switches_a_type_off_from_the_list(admin_client):
    created = EventType.objects.get(name="article.created")
    others = EventType.objects.exclude(pk=created.pk)
    data = {
        "form-TOTAL_FORMS": str(EventType.objects.count()),
        "form-INITIAL_FORMS": str(EventType.objects.count()),
        "_save": "Save",
    }
    for i, et in enumerate([created, *others]):
        data[f"form-{i}-id"] = str(et.pk)
        if et.pk != created.pk:
            data[f"form-{i}-is_active"] = "on"
    response = admin_client.post(LIST_URL, data)
    assert response.status_code == 302
    created.refresh_from_db()
    assert not created.is_active
    assert EventType.objects.filter(is_active=True).count() == others.count()


def test_event_types_cannot_be_added_or_deleted_by_hand(admin_client):
    event_type = EventType.objects.get(name="article.created")
    assert admin_client.get(LIST_URL + "add/").status_code == 403
    assert admin_client.post(change_url(event_type)[:-7] + "delete/").status_code == 403
    assert EventType.objects.filter(pk=event_type.pk).exists()
    assert "Add event type" not in admin_client.get(LIST_URL).content.decode()


def test_tenant_staff_count_only_their_subscribers_and_cannot_switch_types(
    acme_client, acme, globex
):
    SubscriptionFactory(events=["article.created"], scope=acme.scope)
    SubscriptionFactory(events=["article.created"], scope=globex.scope)
    SubscriptionFactory(all_events=True, scope=globex.scope)
    response = acme_client.get(LIST_URL)
    subscribers = response.context["cl"].list_display[3]
    assert subscribers(row_of(response, "article.created")) == 1
    assert b'name="form-0-is_active"' not in response.content  # no toggles for them
    event_type = EventType.objects.get(name="article.created")
    assert acme_client.post(change_url(event_type), {"is_active": ""}).status_code == 403
    event_type.refresh_from_db()
    assert event_type.is_active
