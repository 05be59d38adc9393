"""AtomicUnsafeRequestsMiddleware: the views of requests that change things run in a
transaction (a save and its events commit together, or neither); reads run in autocommit."""

import pytest
from django.db import connection, transaction
from django.http import HttpResponse
from django.urls import path

from tests.testapp.models import Article
from webhooks.models import Event

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls(__name__)]


def in_transaction(request):
    return HttpResponse("yes" if connection.in_atomic_block else "no")


@transaction.non_atomic_requests  # it marks the function itself: a view of its own
def left_alone(request):
    return in_transaction(request)


def save_twice_then_fail(request):
    article = Article.objects.create(title="first")
    article.title = "second"
    article.save()
    if request.GET.get("fail"):
        raise RuntimeError("the view failed after saving")
    return HttpResponse(status=201)


def returns_nothing(request):
    return None


urlpatterns = [
    path("in-transaction/", in_transaction),
    path("left-alone/", left_alone),
    path("save/", save_twice_then_fail),
    path("nothing/", returns_nothing),
]


@pytest.mark.parametrize("method", ["get", "head", "options"])
def test_reads_run_in_autocommit(client, method):
    response = getattr(client, method)("/in-transaction/")
    assert response.status_code == 200
    if method != "head":
        assert response.content == b"no"


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_requests_that_change_things_run_in_a_transaction(client, method):
    assert getattr(client, method)("/in-transaction/").content == b"yes"


def test_a_view_marked_non_atomic_is_left_alone(client):
    assert client.post("/left-alone/").content == b"no"


def test_a_post_commits_its_saves_with_one_event_per_change(client):
    assert client.post("/save/").status_code == 201
    assert [(e.type, e.data["title"]) for e in Event.objects.all()] == [
        ("article.created", "second")
    ]


def test_a_failing_post_rolls_back_its_saves_and_their_events():
    from django.test import Client

    response = Client(raise_request_exception=False).post("/save/?fail=1")
    assert response.status_code == 500
    assert not Article.objects.exists() and not Event.objects.exists()


def test_csrf_protection_still_runs_before_the_view():
    from django.test import Client

    response = Client(enforce_csrf_checks=True).post("/save/")
    assert response.status_code == 403
    assert not Article.objects.exists()


def test_a_view_returning_nothing_is_reported_not_run_twice(client):
    with pytest.raises(ValueError, match="didn't return an HttpResponse"):
        client.post("/nothing/")
