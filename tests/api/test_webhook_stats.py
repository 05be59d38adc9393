"""A webhook's figures (webhooks.stats.endpoint): one definition, the same in the admin's
list, the admin's page and the API."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.admin.helpers import change_url
from tests.api.conftest import API
from tests.factories import DeliveryFactory
from tests.receiver import Answer
from tests.testapp.models import Article
from webhooks import health_hours, stats
from webhooks.models import Delivery, DeliveryAttempt

pytestmark = pytest.mark.django_db

WEBHOOKS_URL = "/admin/webhooks/subscription/"


def text_of(html: str, element_id: str) -> str:
    start = html.index(f'id="{element_id}"')
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html[start : start + 600]))


def list_row(html: str, text: str) -> str:
    [row] = [r for r in re.findall(r"<tr.*?</tr>", html, re.S) if text in r]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row))


@pytest.fixture
def history(tenant_a, receiver, commit, run_due):
    """Four attempts today (a 500 then three 200s) and a failed one two days ago."""
    webhook = tenant_a.subscription(receiver, ["article.created"], description="Graded")
    receiver.answer(Answer(500))
    for n in range(3):
        with commit():
            Article.objects.create(title=f"a{n}", tenant=tenant_a.scope)
    run_due()  # the first one's retry: 200
    receiver.answer(Answer(503))
    with commit():
        Article.objects.create(title="old", tenant=tenant_a.scope)
    old = Delivery.objects.get(event__data__title="old")
    two_days_ago = timezone.now() - timedelta(days=2)
    health_hours.forget(old.attempts.all(), timezone.now())  # moved to its new hour:
    old.attempts.update(created_at=two_days_ago)
    health_hours.count(old.attempts.select_related("delivery"))
    Delivery.objects.filter(pk=old.pk).update(last_attempt_at=two_days_ago)
    Delivery.objects.filter(pk=old.pk).update(next_attempt_at=two_days_ago)  # due ever since
    assert len(receiver.requests) == 5
    return webhook


def test_the_figures_count_attempts_of_the_window_and_what_is_still_owed(history):
    figures = stats.endpoint(history)

    assert (figures.attempts_24h, figures.succeeded_24h) == (4, 3)
    assert figures.success_rate_24h == 0.75
    assert (figures.attempts_7d, figures.succeeded_7d) == (5, 3)
    assert figures.success_rate_7d == pytest.approx(0.6)
    assert (figures.pending, figures.due) == (1, 1)
    newest_success = DeliveryAttempt.objects.filter(succeeded=True).latest("created_at")
    assert figures.last_success_at == newest_success.created_at
    assert figures.latency_sample == 4 and figures.latency_p50_ms is not None
    assert figures.latency_p50_ms <= figures.latency_p95_ms


def test_the_admin_list_the_admin_page_and_the_api_show_the_same_figures(
    history, tenant_a, admin_client, subscribe, receiver
):
    subscribe(receiver, description="Quiet")  # never tried: no rate, not 0 %

    api = tenant_a.client.get(f"{API}subscriptions/{history.pk}/stats/").json()
    page = admin_client.get(change_url(history)).content.decode()
    listed = admin_client.get(WEBHOOKS_URL).content.decode()

    assert (api["success_rate_24h"], api["attempts_24h"], api["succeeded_24h"]) == (0.75, 4, 3)
    assert api["success_rate_7d"] == pytest.approx(0.6)
    assert (api["due"], api["pending"]) == (1, 1)
    assert "75% 3 of 4 attempts succeeded" in text_of(page, "wh-rate-day")
    assert "60% 3 of 5 attempts succeeded" in text_of(page, "wh-rate-week")
    assert "1 still owed (1 due now)" in text_of(page, "wh-rate-day")
    assert " 75% " in list_row(listed, "Graded")
    assert "3 of 4 attempts succeeded" in re.sub(r"\s+", " ", listed)

    quiet = admin_client.get(WEBHOOKS_URL).context["cl"].result_list
    [quiet] = [w for w in quiet if w.description == "Quiet"]
    assert " — " in list_row(listed, "Quiet")
    assert "— no attempts" in text_of(
        admin_client.get(change_url(quiet)).content.decode(), "wh-rate-day"
    )
    assert stats.endpoint(quiet).success_rate_24h is None


def test_the_api_gives_no_rate_when_nothing_was_tried(tenant_a, receiver):
    webhook = tenant_a.subscription(receiver)
    answer = tenant_a.client.get(f"{API}subscriptions/{webhook.pk}/stats/")
    assert answer.status_code == 200
    data = answer.json()
    assert data["success_rate_24h"] is None and data["success_rate_7d"] is None
    assert data["latency_p50_ms"] is None and data["last_attempt_at"] is None


def test_another_tenants_figures_are_a_404(history, tenant_b):
    answer = tenant_b.client.get(f"{API}subscriptions/{history.pk}/stats/")
    assert answer.status_code == 404


def test_latency_percentiles_are_of_the_last_attempts_of_the_day_only(
    subscribe, receiver, monkeypatch
):
    monkeypatch.setattr(stats, "LATENCY_SAMPLE", 10)
    webhook = subscribe(receiver)
    now = timezone.now()

    def attempts(durations, at):
        for n, duration in enumerate(durations):
            when = at + timedelta(seconds=n)
            delivery = DeliveryFactory(subscription=webhook, last_attempt_at=when)
            attempt = DeliveryAttempt.objects.create(
                delivery=delivery,
                number=1,
                request_url=webhook.url,
                duration_ms=duration,
                succeeded=True,
                created_at=when,
            )
            health_hours.count([attempt])  # as the worker records it

    attempts([5000] * 5, now - timedelta(hours=30))  # yesterday: not in the window
    attempts([9000] * 5, now - timedelta(hours=2))  # today, but older than the last 10
    attempts(range(10, 110, 10), now - timedelta(hours=1))  # the last 10: 10, 20 … 100 ms

    figures = stats.endpoint(webhook)

    assert figures.latency_sample == 10
    assert (figures.latency_p50_ms, figures.latency_p95_ms) == (50, 100)
    assert figures.attempts_24h == 15 and figures.attempts_7d == 20


def test_percent_text_never_rounds_a_failure_up_to_100():
    assert stats.percent_text(None) == "—"
    assert stats.percent_text(1.0) == "100%"
    assert stats.percent_text(0.9996) == "99.9%"
    assert stats.percent_text(0.375) == "37.5%"
