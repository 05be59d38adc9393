"""A test event from the portal: any type the webhook receives, its example payload
editable, queued (never sent inside the request's transaction), delivered to a real
receiver on 127.0.0.1, signed with the webhook's current secret, its outcome on the page."""

from __future__ import annotations

import html as htmllib
import json
import re

import pytest

from tests.api.conftest import make_tenant
from tests.factories import DeliveryFactory, SubscriptionFactory
from tests.portal.helpers import PORTAL, messages_of, read_only, signed_in
from tests.receiver import Answer
from webhooks import signing
from webhooks.models import Event, EventType

pytestmark = pytest.mark.django_db


def page_url(webhook) -> str:
    return f"{PORTAL}{webhook.pk}/test/"


def offered_types(html: str) -> list[str]:
    select = html.split('name="event_type"')[1].split("</select>")[0]
    return re.findall(r'<option value="([^"]+)"', select)


def textarea(html: str) -> str:
    found = re.search(r'<textarea name="payload"[^>]*>\n?(.*?)</textarea>', html, re.S)
    return htmllib.unescape(found.group(1))


@pytest.fixture
def webhook(acme, receiver):
    return acme.subscription(receiver, ["article.created", "article.updated"])


def test_an_edited_example_is_delivered_signed_with_the_new_secret(acme, webhook, receiver, commit):
    client = signed_in(acme.user)
    # A new secret, from the portal, that alone signs from now on.
    client.post(f"{PORTAL}{webhook.pk}/secret/", {"overlap": "0"})
    page = client.get(f"{PORTAL}{webhook.pk}/secret/").content.decode()
    new_secret = re.search(r'id="whp-secret-value"[^>]*value="([^"]+)"', page).group(1)
    old_secret = webhook.secret

    form = client.get(page_url(webhook)).content.decode()
    assert offered_types(form) == ["article.created", "article.updated"]
    example = EventType.objects.get(name="article.created").example_payload
    assert json.loads(textarea(form)) == example
    assert '<label for="id_payload">Payload (JSON)</label>' in form

    edited = {"id": 7, "title": "Edited in the portal <b>"}
    with commit():
        response = client.post(
            page_url(webhook), {"event_type": "article.updated", "payload": json.dumps(edited)}
        )
        assert response.status_code == 302
        assert receiver.requests == [], "sent inside the request's transaction"
    assert receiver.types() == ["article.updated"]
    request = receiver.requests[0]
    assert request.json()["data"] == edited
    signing.verify(new_secret, request.headers, request.body)
    with pytest.raises(signing.InvalidSignature):
        signing.verify(old_secret, request.headers, request.body)

    outcome = client.get(response["Location"])
    html = outcome.content.decode()
    assert re.search(r"Delivered: HTTP 200 in \d+ ms\.", html)
    assert "A test article.updated event is queued" in " ".join(messages_of(outcome))
    assert new_secret not in html
    # The type just sent stays chosen for the next test.
    assert re.search(r'<option value="article.updated" selected>', html)


def test_a_failed_test_says_what_the_receiver_answered(acme, webhook, receiver, commit):
    receiver.answer(Answer(500, body="boom"))
    client = signed_in(acme.user)
    with commit():
        response = client.post(
            page_url(webhook), {"event_type": "article.created", "payload": "{}"}
        )
    html = client.get(response["Location"]).content.decode()
    assert "Failed: HTTP 500 in" in html


def test_before_a_worker_sends_it_the_page_says_it_is_sending(acme, webhook, receiver):
    client = signed_in(acme.user)
    # No commit: the request's work is queued, not yet run (as with a busy worker).
    response = client.post(page_url(webhook), {"event_type": "article.created", "payload": "{}"})
    html = client.get(response["Location"]).content.decode()
    assert "Sending… reload this page to see the outcome." in html
    assert "data-whp-pending" in html and "webhooks/portal-test-event.js" in html
    assert receiver.requests == []


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (
            '{"id": 7 "title": "x"}',
            "The payload is not valid JSON: Expecting ',' delimiter at line 1, column 10.",
        ),
        ("", "Write the payload to send, as JSON (e.g. {})."),
        ('{"ratio": NaN}', "The data of a 'article.created' event is not valid JSON"),
    ],
)
def test_a_payload_that_is_not_json_is_refused_saying_what_is_wrong(
    acme, webhook, receiver, commit, payload, error
):
    client = signed_in(acme.user)
    with commit():
        response = client.post(
            page_url(webhook), {"event_type": "article.created", "payload": payload}
        )
    assert response.status_code == 400
    html = response.content.decode()
    assert error in htmllib.unescape(html)
    assert 'aria-invalid="true"' in html
    assert textarea(html) == payload  # what was typed comes back to be fixed
    assert not Event.objects.filter(scope=acme.scope).exists()
    assert receiver.requests == []


def test_a_type_the_webhook_does_not_receive_is_refused(acme, webhook, receiver, commit):
    client = signed_in(acme.user)
    for type_name in ["article.deleted", "webhook.test", "no.such.type"]:
        with commit():
            response = client.post(page_url(webhook), {"event_type": type_name, "payload": "{}"})
        assert response.status_code == 400
        assert (
            f"This webhook does not receive {type_name} events: choose one of the types it is "
            "subscribed to." in response.content.decode()
        )
    assert not Event.objects.filter(scope=acme.scope).exists()
    assert receiver.requests == []


def test_all_events_offers_the_platforms_types_not_the_notices_about_webhooks(acme, receiver):
    everything = acme.subscription(receiver, all_events=True)
    offered = offered_types(signed_in(acme.user).get(page_url(everything)).content.decode())
    assert "article.created" in offered and "user.registered" in offered
    assert "webhook.test" not in offered
    assert "webhook.disabled" not in offered and "webhook.failing" not in offered
    # A webhook that chose a notice about webhooks can be sent its example.
    chosen = acme.subscription(receiver, ["webhook.disabled"])
    assert offered_types(signed_in(acme.user).get(page_url(chosen)).content.decode()) == [
        "webhook.disabled"
    ]


def test_an_inactive_type_is_not_offered(acme, webhook):
    EventType.objects.filter(name="article.updated").update(is_active=False)
    html = signed_in(acme.user).get(page_url(webhook)).content.decode()
    assert offered_types(html) == ["article.created"]


def test_without_javascript_a_button_loads_the_chosen_types_example(acme, webhook, receiver):
    response = signed_in(acme.user).post(
        page_url(webhook),
        {"event_type": "article.updated", "payload": "{}", "load_example": "1"},
    )
    assert response.status_code == 200
    example = EventType.objects.get(name="article.updated").example_payload
    assert json.loads(textarea(response.content.decode())) == example
    assert not Event.objects.filter(scope=acme.scope).exists()


def test_another_customers_webhook_and_delivery_are_not_found(acme, webhook, receiver, commit):
    globex = make_tenant("Globex")
    theirs = globex.subscription(receiver, ["article.created"])
    client = signed_in(acme.user)
    assert client.get(page_url(theirs)).status_code == 404
    with commit():
        response = client.post(page_url(theirs), {"event_type": "article.created", "payload": "{}"})
    assert response.status_code == 404
    assert receiver.requests == []
    # Nor is the outcome of their delivery shown on our page, given its id.
    their_delivery = DeliveryFactory(subscription=theirs, event__scope=globex.scope)
    html = client.get(f"{page_url(webhook)}?sent={their_delivery.pk}").content.decode()
    assert 'id="whp-outcome-heading"' not in html


def test_a_customer_who_may_only_look_cannot_send(acme, webhook, receiver, commit):
    read_only(acme)
    client = signed_in(acme.user)
    assert client.get(page_url(webhook)).status_code == 403
    with commit():
        response = client.post(
            page_url(webhook), {"event_type": "article.created", "payload": "{}"}
        )
    assert response.status_code == 403
    assert receiver.requests == []


def test_sending_without_the_csrf_token_is_refused(acme, webhook, receiver, commit):
    client = signed_in(acme.user, enforce_csrf_checks=True)
    with commit():
        response = client.post(
            page_url(webhook), {"event_type": "article.created", "payload": "{}"}
        )
    assert response.status_code == 403
    assert receiver.requests == []


def test_odd_example_rows_do_not_break_the_page_and_are_escaped(acme, receiver):
    odd = "</textarea><script>alert(1)</script>"
    EventType.objects.filter(name="article.created").update(example_payload=odd)
    webhook = SubscriptionFactory(scope=acme.scope, url=receiver.url, events=["article.created"])
    html = signed_in(acme.user).get(page_url(webhook)).content.decode()
    assert "<script>alert(1)" not in html
    assert json.loads(textarea(html)) == odd


def test_the_portal_names_the_test_event_button_as_the_admin_and_the_docs_do(acme, webhook):
    client = signed_in(acme.user)
    detail = client.get(f"{PORTAL}{webhook.pk}/").content.decode()
    assert re.search(r'href="[^"]+/test/">Send test event</a>', detail)
    form = client.get(page_url(webhook)).content.decode()
    assert 'whp-button--primary">Send test event</button>' in form
