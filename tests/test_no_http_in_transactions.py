"""No outbound HTTP while a database transaction is open: not in the admin, not in the API
(both run under ATOMIC_REQUESTS), not in the tasks. Every request the engine makes is
checked as it starts, on every database alias of the thread that started it."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connections, transaction
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from tests.receiver import Answer
from tests.testapp.models import Article
from webhooks import delivery as http
from webhooks.models import Delivery

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def requests_made(monkeypatch):
    """Every request the engine starts, with whether a transaction was open at the time."""
    made = []
    real_post = http.post
    callers = {alias: connections[alias] for alias in connections}  # this thread's connections

    def checked_post(request):
        made.append(any(c.in_atomic_block or not c.get_autocommit() for c in callers.values()))
        return real_post(request)

    monkeypatch.setattr(http, "post", checked_post)
    return made


@pytest.fixture
def superuser(db):
    return User.objects.create_superuser("root", "root@example.com", "pw")


def test_admin_and_api_actions_send_only_after_their_transaction_commits(
    requests_made, superuser, receiver, subscribe, settings
):
    settings.WEBHOOKS_RETRY_SCHEDULE = []
    sub = subscribe(receiver, all_events=True)
    admin = Client()
    admin.force_login(superuser)
    api = APIClient()
    api.force_authenticate(superuser)
    base = f"/admin/webhooks/subscription/{sub.pk}/"

    assert admin.post(base + "send-test/").status_code == 302
    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.SUCCEEDED  # sent once the request committed
    assert admin.post(f"/admin/webhooks/delivery/{delivery.pk}/resend/").status_code == 302
    Delivery.objects.update(status=Delivery.Status.FAILED)
    since = (timezone.localtime() - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M")
    assert admin.post(base + "recover/", {"since": since}).status_code == 302
    assert api.post(f"/api/webhooks/subscriptions/{sub.pk}/ping/").status_code == 202
    assert api.post(f"/api/webhooks/deliveries/{delivery.pk}/resend/").status_code == 202
    Delivery.objects.update(status=Delivery.Status.FAILED)
    response = api.post(
        f"/api/webhooks/subscriptions/{sub.pk}/recover/",
        {"since": (timezone.now() - timedelta(hours=1)).isoformat()},
        format="json",
    )
    assert response.status_code == 202 and response.json() == {"queued": 2}

    assert len(receiver.requests) == len(requests_made) == 7
    assert not any(requests_made), "an HTTP request started inside a transaction"


def test_deliveries_and_retries_send_outside_any_transaction(requests_made, receiver, subscribe):
    from webhooks import sweeper

    subscribe(receiver, ["article.created"])
    receiver.answer(Answer(500))
    with transaction.atomic():
        Article.objects.create(title="a")  # sent on commit, by the (inline) task
    sweeper.sweep_once(now=timezone.now() + timedelta(days=1))  # the retry
    assert len(receiver.requests) == len(requests_made) == 2
    assert not any(requests_made)
    assert Delivery.objects.get().status == Delivery.Status.SUCCEEDED


def test_the_check_sees_an_open_transaction(requests_made, receiver, subscribe):
    """The check itself can fail: sending inside ``atomic`` is reported."""
    subscribe(receiver, all_events=True)
    with transaction.atomic():
        request = http.OutgoingRequest(receiver.url, {}, b"{}")
        http.post(request)
    assert requests_made == [True]
