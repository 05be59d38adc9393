"""`seed_demo` seeds the users the README's examples log in as, and follows the port."""

import io

from django.core.management import call_command
from rest_framework.test import APIClient

from example_project.demo.seed import STAFF
from example_project.organisations.models import Organisation
from webhooks.models import Event, Subscription


def test_seed_demo_makes_webhook_managing_staff_of_each_organisation(db):
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    assert "Staff of Northwind Academy created: username 'alice', password 'alice'." in (
        out.getvalue()
    )
    assert Event.objects.count() == 0  # a staff account is not a platform sign-up
    for username, password, slug in STAFF:
        org = Organisation.objects.get(slug=slug)
        client = APIClient()
        assert client.login(username=username, password=password)
        listed = client.get("/api/webhooks/subscriptions/").json()["results"]
        assert [w["scope"] for w in listed] == [org.scope]  # its own demo webhook only
        user = org.members.get().user
        assert user.is_staff and not user.is_superuser
        assert user.has_perm("webhooks.add_subscription")
        assert user.has_perm("webhooks.view_delivery")


def test_seeding_again_on_another_port_moves_the_demo_webhooks(db):
    call_command("seed_demo", stdout=io.StringIO())
    secrets = dict(Subscription.objects.values_list("scope", "secret"))
    out = io.StringIO()
    call_command("seed_demo", "--receiver-base", "http://127.0.0.1:8001", stdout=out)
    urls = sorted(Subscription.objects.values_list("url", flat=True))
    assert urls == [
        "http://127.0.0.1:8001/demo-receiver/contoso/",
        "http://127.0.0.1:8001/demo-receiver/northwind/",
    ]
    assert dict(Subscription.objects.values_list("scope", "secret")) == secrets
    assert "http://127.0.0.1:8001/api/webhooks/" in out.getvalue()
