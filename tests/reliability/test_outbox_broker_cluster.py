"""Real ``manage.py qcluster`` processes on SQLite with the outbox broker: the workers
take events from the Event table itself (no task row per event), and nothing is lost or
sent twice, with two clusters polling at once or a cluster killed mid-burst.

Always SQLite + ``webhooks.broker.OutboxBroker`` (the embedded default), whatever
database the suite runs on. Summary lines as in ``test_chaos.py``.
"""

from __future__ import annotations

import time

from bench.harness import Backend
from tests.reliability import test_chaos as chaos
from tests.reliability.test_chaos import CHAOS_WEBHOOKS, DEADLINE, EVENTS, SUBS, report

scenario = chaos.scenario  # the chaos suite's fixture: a backend, a receiver, processes

# A claim (and an unacknowledged ORM task) comes back after ``retry`` seconds: short
# here, so a killed cluster's events are handed out again within the test.
Q_CLUSTER = {
    "timeout": 10,
    "retry": 15,
    "queue_limit": 4,
    "broker_class": "webhooks.broker.OutboxBroker",
}


def outbox_backend() -> Backend:
    return Backend("sqlite", webhooks=CHAOS_WEBHOOKS, q_cluster=Q_CLUSTER)


def test_two_clusters_polling_the_outbox_send_each_delivery_exactly_once(scenario, capsys):
    s = scenario("two clusters, outbox broker", backend=outbox_backend())
    s.p.qcluster(s.env(), name="qcluster-1")
    s.p.qcluster(s.env(), name="qcluster-2")
    s.p.sweeper(s.env(), duration=DEADLINE + 60)
    run = s.create()
    s.wait_for(run["committed"])
    time.sleep(1)  # a late double would land now
    result = s.summary(run["committed"], extra=f"status={s.status()}")
    report(capsys, result)
    assert run["failed_saves"] == []
    assert result.lost == 0
    assert result.duplicated == 0
    assert result.signature_failures == 0
    assert s.status() == {"succeeded": EVENTS * SUBS}


def test_a_cluster_killed_mid_burst_loses_no_event(scenario, capsys):
    s = scenario("cluster SIGKILL, outbox broker", backend=outbox_backend(), delay=0.05)
    run, killed_at = chaos.kill_cluster_mid_burst(s, "--rate", str(EVENTS / 4))  # ~4 s of saves
    s.wait_for(run["committed"])
    result = s.summary(
        run["committed"], extra=f"received_before_kill={killed_at} status={s.status()}"
    )
    report(capsys, result)
    assert run["failed_saves"] == []
    assert len(run["committed"]) == EVENTS
    assert result.lost == 0
    assert result.signature_failures == 0
    # At least once: only requests in flight when the cluster died may be sent again.
    assert result.duplicated <= 2 * CHAOS_WEBHOOKS["BATCH_SIZE"]
