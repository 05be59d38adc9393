"""``bench.datagen`` writes data the app runs on: the counts it reports are the tables',
secrets decrypt with the app's keys, and the admin's, the API's and the portal's lists
render it for the big tenant's staff and for a superuser."""

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Count, Sum
from django.test import Client
from django.utils import timezone

from bench import datagen
from webhooks import health_hours
from webhooks.models import Delivery, DeliveryAttempt, Event, HealthHour, Subscription

pytestmark = [
    pytest.mark.django_db,
    # The generator fills PostgreSQL (COPY) and SQLite, the two the scale ladder is run on.
    pytest.mark.skipif(
        connection.vendor == "mysql", reason="bench.datagen fills PostgreSQL and SQLite only"
    ),
]


@pytest.fixture
def made(settings):
    settings.ALLOWED_HOSTS = ["testserver"]
    return datagen.generate(attempts=600, webhooks=40, tenants=4, analyse=False)


def client_of(username: str) -> Client:
    client = Client()
    client.force_login(get_user_model().objects.get(username=username))
    return client


def test_the_tables_hold_what_the_generator_says_it_made(made):
    assert made.attempts >= 600
    assert Subscription.objects.count() == made.webhooks == 40
    assert Delivery.objects.count() == made.deliveries
    assert DeliveryAttempt.objects.count() == made.attempts
    assert Event.objects.filter(source_model="testapp.article").count() == made.events
    statuses = dict(Delivery.objects.values_list("status").annotate(n=Count("pk")).order_by())
    assert statuses == {status: n for status, n in made.statuses.items() if n}
    big = DeliveryAttempt.objects.filter(delivery__subscription__scope=made.big_scope).count()
    assert big >= made.big_attempts  # the big tenant holds most of them
    assert big > DeliveryAttempt.objects.count() / 2


def test_the_hourly_health_rows_count_the_last_week_of_attempts(made):
    # A webhook's success rates are summed from these rows: left empty, every figure of
    # the generated data set would read "no attempts".
    kept_since = health_hours.hour_of(timezone.now() - health_hours.KEPT)
    by_hand = dict(
        DeliveryAttempt.objects.filter(created_at__gte=kept_since)
        .values_list("delivery__subscription_id")
        .annotate(n=Count("pk"))
        .order_by()
    )
    stored = dict(
        HealthHour.objects.values_list("subscription_id").annotate(n=Sum("attempts")).order_by()
    )
    assert by_hand and stored == by_hand


def test_the_webhooks_are_varied_and_their_secrets_decrypt(made):
    webhooks = list(Subscription.objects.all())
    assert all(w.secret.startswith("whsec_") for w in webhooks)  # not an UnreadableSecret
    assert any(w.all_events for w in webhooks)
    assert any(not w.all_events and w.event_types.exists() for w in webhooks)
    assert any(not w.is_active for w in webhooks) or len(webhooks) < 20
    failed = Delivery.objects.filter(status="failed").first()
    assert failed is None or failed.attempts.count() == failed.attempt_count


PAGES = [
    "/admin/webhooks/delivery/",
    "/admin/webhooks/delivery/?state=failed",
    "/admin/webhooks/subscription/",
    "/api/webhooks/deliveries/",
    "/api/webhooks/events/",
    "/api/webhooks/subscriptions/",
]


@pytest.mark.parametrize("username", ["big-staff", "scale-admin"])
def test_the_list_pages_render_the_generated_data(made, username):
    client = client_of(username)
    busy = Subscription.objects.get(pk=made.big_webhook)
    for url in [*PAGES, f"/admin/webhooks/subscription/{busy.pk}/change/"]:
        response = client.get(url)
        assert response.status_code == 200, url
    deliveries = client.get("/api/webhooks/deliveries/").json()["results"]
    assert len(deliveries) == 50
    if username == "big-staff":  # a tenant's staff see their tenant's only
        assert {d["subscription"] for d in deliveries} <= {
            str(pk)
            for pk in Subscription.objects.filter(scope=made.big_scope).values_list("pk", flat=True)
        }


def test_the_portal_renders_the_big_tenants_log(made):
    client = client_of("big-staff")
    portal = "/settings/integrations/webhooks/"
    for url in [portal, f"{portal}{made.big_webhook}/", f"{portal}deliveries/"]:
        assert client.get(url).status_code == 200, url


def test_rows_are_written_in_time_order_with_time_ordered_ids(made):
    # As the app writes them: the retention purge deletes the oldest first, and rows
    # scattered at random over the table made each of its batches read a page per row.
    written = list(Delivery.objects.order_by("pk").values_list("created_at", flat=True))
    by_time = sorted(written)
    # uuid7 holds milliseconds: deliveries of the same millisecond may come either way.
    assert [t.replace(microsecond=t.microsecond // 1000 * 1000) for t in written] == [
        t.replace(microsecond=t.microsecond // 1000 * 1000) for t in by_time
    ]
    assert {d.id.version for d in Delivery.objects.all()} == {7}
    assert {e.id.version for e in Event.objects.filter(source_model="testapp.article")} == {7}
    # A quiet webhook's few attempts are spread over the 90 days, not all on the oldest.
    days = {
        (timezone.now() - at).days
        for at in DeliveryAttempt.objects.values_list("created_at", flat=True)
    }
    assert min(days) <= 30 and max(days) >= 60
