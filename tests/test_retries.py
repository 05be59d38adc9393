"""The retry schedule: jitter within bounds, Retry-After capped, an end."""

import pytest

from webhooks.retries import retry_delay


def test_default_schedule_is_close_to_svix_with_jitter(settings):
    settings.WEBHOOKS_RETRY_JITTER = 0.1
    delays = [retry_delay(1) for _ in range(200)]
    assert all(4.5 <= d <= 5.5 for d in delays)
    assert len(set(delays)) > 1  # jittered, so receivers are not hit in lockstep
    assert 9 * 3600 <= retry_delay(7) <= 11 * 3600
    assert retry_delay(8) is None  # 1 try + 7 retries, then give up


@pytest.mark.parametrize("asked,expected", [(30, 30), (0, 0), (10**9, 3600)])
def test_retry_after_replaces_the_schedule_within_bounds(settings, asked, expected):
    settings.WEBHOOKS_MAX_RETRY_AFTER = 3600
    assert retry_delay(1, retry_after=asked) == expected


def test_retry_after_does_not_extend_the_number_of_retries(settings):
    settings.WEBHOOKS_RETRY_SCHEDULE = [1]
    assert retry_delay(2, retry_after=5) is None
