"""Statements per delivery: every SQL statement and transaction a worker's task sends to
deliver events, each named by what it is for (docs/benchmarks.md).

    python -m bench.run statements [--size tiny] [--backends sqlite]

``measure`` (the benchmark's side, no Django) starts one receiver answering 204 and one
answering 500 to every request, then runs this module as a child process
(``DJANGO_SETTINGS_MODULE`` = ``bench.settings``). For each receiver it subscribes 3
webhooks, saves N ``article.created`` events with the on-commit enqueue switched off, and
calls ``dispatch.process_events`` in batches of ``WEBHOOKS_BATCH_SIZE`` events, as a
worker's task would (django-q2 not in sync mode, so the task also helps with due
deliveries), recording every statement on the worker's connection.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

from bench.harness import ROOT, Processes, backend, host

SUBSCRIPTIONS = 3

#: What each statement is for, by the webhooks function that sends it, its verb and its
#: table (and, where one function sends two such statements, a piece of its SQL). The
#: first match wins; a statement matching none is reported by its call site.
PURPOSES = [
    # category, call site, verb, table, SQL contains, what it is for
    ("fan-out", "outbox.any_waiting", "SELECT", "webhooks_event", "",
     "are the task's events still waiting? (no transaction; taken ones: the task's only cost)"),
    ("fan-out", "outbox._waiting_events", "SELECT", "webhooks_event", " LIMIT ",
     "lock the oldest waiting events, to fill a batch, each with its type's on/off"),
    ("fan-out", "outbox._waiting_events", "SELECT", "webhooks_event", "",
     "lock the task's own events (those not among the oldest), each with its type's on/off"),
    ("fan-out", "outbox._subscriptions_for", "SELECT", "webhooks_subscription", "",
     "read the subscriptions that want them (whole rows, sent with)"),
    ("fan-out", "outbox._insert_deliveries", "WITH", "webhooks_delivery", "",
     "insert the deliveries, already leased, and mark the events fanned out (PostgreSQL)"),
    ("fan-out", "outbox._insert_deliveries", "INSERT", "webhooks_delivery", "",
     "insert the deliveries, already leased to this task"),
    ("fan-out", "outbox._fan_out", "UPDATE", "webhooks_event", "",
     "mark the events fanned out (other databases)"),
    ("recording", "dispatch._lock_deliveries", "SELECT", "webhooks_delivery", "",
     "lock the deliveries whose requests ended, each with its webhook's failure streak "
     "(and, with failures, its count of automatic attempts: the retry step)"),
    ("recording", "dispatch._insert_attempts", "INSERT", "webhooks_deliveryattempt", "",
     "insert the attempts"),
    ("recording", "health_hours._add", "INSERT", "webhooks_healthhour", "",
     "add them to their webhooks' hourly counts (one upsert per group)"),
    ("recording", "dispatch._save_states", "UPDATE", "webhooks_delivery", "",
     "update delivery state (one per distinct new state)"),
    ("recording", "dispatch._lock_subscriptions", "SELECT", "webhooks_subscription", "",
     "lock the subscriptions with failures (their streaks only)"),
    ("recording", "dispatch._save_streaks", "UPDATE", "webhooks_subscription", "",
     "update their failure streaks (one for all of them)"),
    ("recording", "dispatch._not_yet_recorded", "SELECT", "webhooks_deliveryattempt", "",
     "after a lost commit: which outcomes were recorded"),
    ("help", "outbox.any_due", "SELECT", "webhooks_delivery", "",
     "is anything due? (no transaction; nearly always the help step's only cost)"),
    ("help", "outbox.claim_due", "SELECT", "webhooks_delivery", "",
     "find due deliveries (retries), skipping locked ones"),
    ("help", "outbox.claim", "UPDATE", "webhooks_delivery", "", "lease them"),
    ("help", "outbox.claim", "SELECT", "webhooks_delivery", "", "read which were leased"),
    ("help", "dispatch.send_claimed", "UPDATE", "webhooks_delivery", "",
     "renew their lease (in a worker: only leases a quarter gone)"),
    ("help", "dispatch.send_claimed", "SELECT", "webhooks_delivery", "",
     "read them with their events"),
    ("help", "dispatch.send_claimed", "SELECT", "webhooks_subscription", "",
     "read their subscriptions"),
    ("give back", "dispatch._release", "UPDATE", "webhooks_delivery", "",
     "give deliveries back, still due"),
]  # fmt: skip

CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")
_TABLE = re.compile(r'\(|\)|\b(?:FROM|INTO|UPDATE) "([^"]+)"')
_LOCK = re.compile(r"FOR UPDATE(?: OF \S+)?(?: SKIP LOCKED| NOWAIT)?")


def main_table(sql: str) -> str:
    """The table a statement reads or writes: the first one named outside parentheses (an
    annotation's subquery comes before the main FROM)."""
    depth = 0
    for m in _TABLE.finditer(sql):
        if m.group(0) == "(":
            depth += 1
        elif m.group(0) == ")":
            depth -= 1
        elif depth == 0:
            return m.group(1)
    return "?"


def classify(site: str, sql: str) -> tuple[str, str, str]:
    """(category, what it is for, the statement's shape, e.g. ``SELECT webhooks_event …
    FOR UPDATE SKIP LOCKED``)."""
    verb, table = sql.split(None, 1)[0].upper(), main_table(sql)
    shape = f"{verb} {table}"
    lock = _LOCK.search(sql)
    if lock:
        shape += " … " + lock.group(0).replace('"', "")
    for category, at, v, t, contains, purpose in PURPOSES:
        if (at, v, t) == (site, verb, table) and contains in sql:
            return category, purpose, shape
    return "other", f"{verb} {table} in {site}", shape


class Recorder:
    """Every statement the worker's connection sends, named by the webhooks function that
    sent it, and every transaction.

    Statements go through ``execute_wrapper`` (unlike ``CaptureQueriesContext`` it does not
    switch on the debug cursor), and so do SAVEPOINTs and SQLite's BEGIN; PostgreSQL's
    BEGIN is sent by the driver before a transaction's first statement, and COMMIT by
    ``connection.commit``, which is wrapped. A statement outside ``atomic`` is a
    transaction of its own (autocommit).
    """

    def __init__(self, connection) -> None:
        self.connection = connection
        self.rows: Counter[tuple] = Counter()  # (category, purpose, shape, site) -> count
        self.examples: dict[tuple, str] = {}  # the same key -> the first such SQL, cut
        self.control: Counter[str] = Counter()  # BEGIN, COMMIT, ROLLBACK, SAVEPOINT, RELEASE
        self.transactions: Counter[str] = Counter()  # category of its first statement -> n
        self.autocommit = 0
        self.open = False  # an explicit transaction has begun and not ended
        self.first: str | None = None  # category of the open transaction's first statement

    def __call__(self, execute, sql, params, many, context):
        verb = sql.split(None, 1)[0].upper()
        if verb in CONTROL:
            self.control[verb] += 1
            self.open = self.open or verb == "BEGIN"
            return execute(sql, params, many, context)
        site = call_site()
        category, purpose, shape = classify(site, sql)
        self.rows[category, purpose, shape, site] += 1
        self.examples.setdefault((category, purpose, shape, site), sql[:200])
        if not self.connection.in_atomic_block:
            self.autocommit += 1
            self.transactions[category] += 1
        elif self.first is None:  # the transaction's first statement names it
            if not self.open:  # PostgreSQL: the driver sends BEGIN just before it
                self.control["BEGIN"] += 1
            self.open, self.first = True, category
            self.transactions[category] += 1
        return execute(sql, params, many, context)

    def ended(self) -> None:
        self.open, self.first = False, None

    @contextmanager
    def capture(self):
        conn = self.connection
        commit, rollback = conn.commit, conn.rollback

        def counting(end, verb):
            def wrapped():
                if self.open:
                    self.control[verb] += 1
                self.ended()
                return end()

            return wrapped

        conn.commit, conn.rollback = counting(commit, "COMMIT"), counting(rollback, "ROLLBACK")
        try:
            with conn.execute_wrapper(self):
                yield self
        finally:
            del conn.commit, conn.rollback

    def summary(self, deliveries: int, tasks: int) -> dict:
        def per(n):
            return {"count": n, "per_task": n / tasks, "per_delivery": n / deliveries}

        statements = sum(self.rows.values())
        explicit = sum(self.transactions.values()) - self.autocommit
        categories = Counter()
        for (category, *_), n in self.rows.items():
            categories[category] += n
        return {
            "statements": per(statements),
            "transactions": per(sum(self.transactions.values())),
            "explicit_transactions": explicit,
            "autocommit_statements": self.autocommit,
            "control": dict(self.control),
            "round_trips_per_delivery": (statements + sum(self.control.values())) / deliveries,
            "by_category": {c: per(n) for c, n in sorted(categories.items())},
            "transactions_by_category": dict(self.transactions),
            "by_purpose": [
                {
                    "category": key[0],
                    "purpose": key[1],
                    "statement": key[2],
                    "call_site": key[3],
                    **per(n),
                    "sql": self.examples[key],
                }
                for key, n in sorted(self.rows.items(), key=_in_purpose_order)
            ],
        }


def _in_purpose_order(item):
    (_category, purpose, *_), _n = item
    order = [p for _, _, _, _, _, p in PURPOSES]
    return order.index(purpose) if purpose in order else len(order), purpose


WEBHOOKS_DIR = f"{ROOT / 'webhooks'}/"


#: Helpers that send statements for their callers, the caller named instead: a module's
#: every function, or one ``module.function``.
RUNNERS = {"rows", "dispatch._update_rows"}


def call_site() -> str:
    """``module.function`` of the innermost webhooks frame on the stack (past ``RUNNERS``)."""
    frame = sys._getframe(1)
    while frame is not None:
        path = frame.f_code.co_filename
        if path.startswith(WEBHOOKS_DIR):
            module = Path(path).stem
            site = f"{module}.{frame.f_code.co_name}"
            if module not in RUNNERS and site not in RUNNERS:
                return site
        frame = frame.f_back
    return "?"


# The child process (Django) --------------------------------------------------------------


def deliver(base_url: str, events: int) -> dict:
    """Subscribe 3 webhooks to ``base_url``, save ``events`` events and deliver them in
    batches, as a worker's tasks would; the statements they sent and what became of them."""
    from unittest import mock

    from django.db import connection, transaction

    from tests.testapp.models import Article
    from webhooks import dispatch
    from webhooks.conf import conf
    from webhooks.models import Delivery, DeliveryAttempt, Event, Subscription
    from webhooks.signing import generate_secret

    Subscription.objects.all().delete()
    for i in range(SUBSCRIPTIONS):
        url = f"{base_url}/hook/{i}"
        Subscription.objects.create(url=url, all_events=True, secret=generate_secret())
    with mock.patch("webhooks.outbox.enqueue"), transaction.atomic():
        for n in range(events):
            Article.objects.create(title=str(n))
    ids = [
        str(pk)
        for pk in Event.objects.filter(fanned_out_at__isnull=True)
        .order_by("occurred_at")
        .values_list("pk", flat=True)
    ]
    size = max(1, conf.BATCH_SIZE)
    batches = [ids[i : i + size] for i in range(0, len(ids), size)]
    recorder = Recorder(connection)
    with recorder.capture():
        for batch in batches:  # one task per batch
            dispatch.process_events(batch)
    # Under load every event's own on-commit task still runs, mostly after a batch took its
    # event (the throughput benchmark runs one per event): what those tasks send.
    leftover = Recorder(connection)
    with leftover.capture():
        for pk in ids:
            dispatch.process_events([pk])
    deliveries = Delivery.objects.filter(event_id__in=ids)
    total = max(1, len(ids) * SUBSCRIPTIONS)
    return {
        "events": len(ids),
        "subscriptions": SUBSCRIPTIONS,
        "batches": len(batches),
        "batch_size": size,
        "deliveries": deliveries.count(),
        "delivery_states": dict(Counter(deliveries.values_list("status", flat=True))),
        "attempts": DeliveryAttempt.objects.filter(delivery__in=deliveries).count(),
        "attempts_succeeded": DeliveryAttempt.objects.filter(
            delivery__in=deliveries, succeeded=True
        ).count(),
        **recorder.summary(deliveries=total, tasks=max(1, len(batches))),
        "tasks_finding_their_event_taken": leftover.summary(deliveries=total, tasks=len(ids)),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--ok", required=True, help="a receiver answering 204: http://host:port")
    parser.add_argument("--failing", required=True, help="a receiver answering 500")
    args = parser.parse_args(argv)

    import django

    django.setup()
    from django.test.utils import override_settings
    from django_q.conf import Conf

    Conf.SYNC = False  # a worker's task: it helps with due deliveries after its own
    result = {"happy": deliver(args.ok, args.events)}
    # First attempts only: the retries are due in an hour, so none is sent during the run.
    with override_settings(WEBHOOKS_RETRY_SCHEDULE=[3600]):
        result["failing"] = deliver(args.failing, args.events)
    sys.stdout.write(json.dumps(result) + "\n")


# The benchmark's side (no Django) ----------------------------------------------------------


def measure(kind: str, *, events: int, webhooks: dict) -> dict:
    with backend(kind, webhooks=webhooks) as b, Processes(b.tmp) as p:
        [ok] = p.receiver(ports=1)
        [failing] = p.receiver(ports=1, fail=1.0, max_faults=10**9)
        result = host(
            b.env(),
            "--events",
            str(events),
            "--ok",
            f"http://127.0.0.1:{ok}",
            "--failing",
            f"http://127.0.0.1:{failing}",
            module="bench.statements",
        )
        # The host's side, as the overhead benchmark captures it: one bound save.
        [row] = host(b.env(), "overhead", "--n", "0", "--subs", str(SUBSCRIPTIONS))["queries"]
        result["host_one_save"] = row["bound"]
        result["settings"] = webhooks
        return result


if __name__ == "__main__":
    main()
