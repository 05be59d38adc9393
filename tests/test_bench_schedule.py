"""How the benchmarks judge "on schedule" (``bench/schedule.py``): each attempt's start
against its due time, and a retry never made counted as late, not ignored."""

from bench.schedule import lateness, summary

SCHEDULE = [2, 2]


def test_each_attempt_is_measured_from_the_previous_attempts_end_plus_the_step():
    # Committed at 10.0; attempt 1 ran 10.2-10.5, attempt 2 was due at 12.5 and started
    # 0.1 s late, attempt 3 was due at 12.7 + 2 and started 2 s late.
    attempts = [[1, 10.2, 10.5], [2, 12.6, 12.7], [3, 16.7, 17.0]]
    row = {"title": "0", "status": "failed", "attempts": attempts}
    late = lateness([row], {"0": 10.0}, SCHEDULE, now=30)
    assert [round(x, 3) for x in late["first"]] == [0.2]
    assert [round(x, 3) for x in late["retries"]] == [0.1, 2.0]
    assert late["overdue"] == []
    assert [round(x, 3) for x in late["worst_per_delivery"]] == [2.0]
    assert summary(late["retries"])["late_over_1s"] == 1


def test_a_retry_due_but_never_made_is_late_by_the_time_since_it_was_due():
    row = {"title": "1", "status": "pending", "attempts": [[1, 11.0, 11.1]]}
    late = lateness([row], {"1": 10.5}, SCHEDULE, now=20)
    assert [round(x, 3) for x in late["overdue"]] == [6.9]  # due at 13.1
    assert [round(x, 3) for x in late["worst_per_delivery"]] == [6.9]


def test_a_pending_delivery_not_yet_due_and_an_unknown_event_are_not_late():
    pending = {"title": "2", "status": "pending", "attempts": [[1, 11.0, 11.1]]}
    unknown = {"title": "other", "status": "pending", "attempts": []}
    late = lateness([pending, unknown], {"2": 11.0}, SCHEDULE, now=12)
    assert late["overdue"] == [] and len(late["worst_per_delivery"]) == 1
