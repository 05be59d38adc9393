"""Fill a database with a platform's worth of webhooks, events, deliveries and attempts, fast.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/wh_scale python -m bench.datagen --attempts 1M
    python -m bench.datagen --attempts 10k --webhooks 1k        # SQLite: the example project's file

It migrates the database named by the settings (``bench.settings``: the example project),
then writes ``--tenants`` organisations (scopes), each with its webhooks (``--webhooks`` in
all: a third all-events, the others 1–5 event types; 5 % disabled, 5 % failing), and events,
deliveries and attempts spread over the last 90 days until ``--attempts`` attempts exist.
One tenant, "Big", holds ``--big-share`` of the attempts, most of them on one busy webhook;
the others share the rest. Each event is owed to one webhook; 92 % of deliveries succeed
on their first try, 4 % after 2–3 tries, 3 % gave up after 5 failed tries, 1 % (the last
day's) wait for a retry. Rows are written in time order with time-ordered ids, as the
app writes them (``activity_rows``).

PostgreSQL is filled with COPY (psycopg 3), its indexes and constraints dropped for the
load and rebuilt after (as ``pg_restore`` does), then analysed; SQLite with
``executemany``. Values are the app's own: secrets encrypted with
``WEBHOOKS_ENCRYPTION_KEYS`` through the model fields, the ``webhook-id`` header of each
attempt its delivery's. A staff member of Big (``big-staff``, the webhook managers group)
and a superuser (``scale-admin``), both with password ``pw``, are made for the pages.
Printed (last line, JSON): what was made (counted back from the tables) and how long it took.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from webhooks.ids import uuid7

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

DAYS = 90
BATCH = 20_000
BIG = "Big"
RECEIVER = "https://hooks.example.com"


def count(text: str) -> int:
    """``10k``, ``1M``, ``100_000`` → an int."""
    text = text.strip().lower().replace("_", "")
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text.rstrip("km")) * scale)


@dataclass
class Made:
    """What the generator wrote: its own tally, checked against the tables afterwards."""

    tenants: int = 0
    webhooks: int = 0
    events: int = 0
    deliveries: int = 0
    attempts: int = 0
    statuses: dict = field(default_factory=lambda: {"succeeded": 0, "failed": 0, "pending": 0})
    big_scope: str = ""
    big_webhook: str = ""
    big_attempts: int = 0
    seconds: dict = field(default_factory=dict)


# -- the rows -------------------------------------------------------------------------------

SUBSCRIPTION_COLUMNS = (
    "id scope description url all_events is_active disabled_reason disabled_at secret "
    "previous_secret basic_auth_username basic_auth_password headers sensitive_headers "
    "consecutive_failures failing_since created_at updated_at"
).split()
EVENT_COLUMNS = "id type data scope source_model source_id occurred_at fanned_out_at".split()
DELIVERY_COLUMNS = (
    "id event_id subscription_id status attempt_count next_attempt_at last_status_code "
    "last_error last_attempt_at created_at updated_at"
).split()
ATTEMPT_COLUMNS = (
    "delivery_id number trigger request_url request_headers request_body_sha256 "
    "response_status_code response_headers response_body duration_ms succeeded error_kind "
    "error_message created_at"
).split()


class Encoder:
    """Python values as the backend stores them: PostgreSQL's COPY takes them as they are
    (JSON as text); SQLite wants Django's text forms (uuid hex, naive UTC times)."""

    def __init__(self, vendor: str) -> None:
        self.sqlite = vendor == "sqlite"

    def uuid(self, value: uuid.UUID):
        return value.hex if self.sqlite else value

    def time(self, value: datetime | None):
        if value is None or not self.sqlite:
            return value
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ")

    def flag(self, value: bool):
        return int(value) if self.sqlite else value


def webhook_rows(tenants, per_tenant, types, now, rng, enc, made):
    """The webhooks of each tenant, and the event types each of them wants."""
    from django.db import connection

    from webhooks import signing
    from webhooks.models import Subscription

    fields = {name: Subscription._meta.get_field(name) for name in SUBSCRIPTION_COLUMNS}

    def stored(name, value):  # what the model field writes: encrypted secrets
        return fields[name].get_db_prep_value(value, connection)

    subscriptions, wanted, by_tenant = [], [], {}
    for scope, how_many in zip(tenants, per_tenant, strict=True):
        for n in range(how_many):
            pk = uuid.uuid4()
            created = now - timedelta(days=DAYS + 10, seconds=rng.uniform(0, 86_400 * 30))
            roll = rng.random()
            disabled, failing = roll < 0.05, 0.05 <= roll < 0.10
            all_events = n == 0 or rng.random() < 1 / 3  # the tenant's first takes everything
            subscriptions.append(
                (
                    enc.uuid(pk),
                    scope,
                    f"Webhook {n + 1}" if n % 3 else "",
                    f"{RECEIVER}/{scope.replace(':', '-')}/{n}",
                    enc.flag(all_events),
                    enc.flag(not disabled),
                    "Disabled after 5 days of failures." if disabled else "",
                    enc.time(now - timedelta(days=3)) if disabled else None,
                    stored("secret", signing.generate_secret()),
                    stored("previous_secret", ""),
                    "",
                    stored("basic_auth_password", ""),
                    stored("headers", {"X-Customer": scope} if n % 4 == 0 else {}),
                    "[]",
                    rng.randint(3, 40) if failing else 0,
                    enc.time(now - timedelta(hours=rng.randint(1, 48))) if failing else None,
                    enc.time(created),
                    enc.time(created),
                )
            )
            if not all_events:
                for type_id in rng.sample(sorted(types), rng.randint(1, min(5, len(types)))):
                    wanted.append((enc.uuid(pk), type_id))
            by_tenant.setdefault(scope, []).append((pk, all_events, not disabled))
    made.webhooks = len(subscriptions)
    return subscriptions, wanted, by_tenant


def outcome(rng: random.Random, at: datetime, now: datetime):
    """(status, tries, last code, last error) of one delivery made at ``at``."""
    roll = rng.random()
    if now - at < timedelta(days=1) and roll < 0.01:
        return "pending", rng.randint(1, 2), 503, "HTTP 503"
    if roll < 0.92:
        return "succeeded", 1, 200, ""
    if roll < 0.96:
        return "succeeded", rng.randint(2, 3), 200, ""
    if roll < 0.98:
        return "failed", 5, 500, "HTTP 500"
    return "failed", 5, None, "Connection refused"


def activity_rows(targets, type_names, now, rng, enc, made):
    """Batches of (events, deliveries, attempts) rows, ``targets`` being a list of
    (scope, webhook id, url, attempts wanted).

    Written a day at a time, oldest first, each day's deliveries in time order, with
    time-ordered ids (``webhooks.ids.uuid7`` of each row's time): the order a platform
    writes them in. Rows scattered at random over the tables (as this generator wrote
    them before) made every batch of the retention purge, which deletes the oldest
    first, read a page per row."""
    days_wanted = [per_day(wanted, rng) for _, _, _, wanted in targets]
    for day in range(DAYS):
        start = now - timedelta(days=DAYS - day)
        made_today = []
        for (scope, webhook, url, _), per_days in zip(targets, days_wanted, strict=True):
            tries_made, wanted = 0, per_days[day]
            while tries_made < wanted:
                at = start + timedelta(seconds=rng.uniform(0, 86_400))
                status, tries, code, error = outcome(rng, at, now)
                tries = min(tries, wanted - tries_made) if status != "succeeded" else tries
                tries_made += tries
                made_today.append((at, scope, webhook, url, status, tries, code, error))
        made_today.sort(key=lambda row: row[0])
        events, deliveries, attempts = [], [], []
        for row in made_today:
            one_delivery(row, type_names, now, rng, enc, made, events, deliveries, attempts)
            if len(attempts) >= BATCH:
                yield events, deliveries, attempts
                made.events += len(events)
                made.deliveries += len(deliveries)
                made.attempts += len(attempts)
                events, deliveries, attempts = [], [], []
        if attempts:
            yield events, deliveries, attempts
            made.events += len(events)
            made.deliveries += len(deliveries)
            made.attempts += len(attempts)


def per_day(wanted: int, rng: random.Random) -> list[int]:
    """``wanted`` attempts over ``DAYS`` days: evenly, the remainder on random days (not
    all on the oldest: a quiet webhook's few attempts are anywhere in the 90 days)."""
    counts = [wanted // DAYS] * DAYS
    for day in rng.sample(range(DAYS), wanted % DAYS):
        counts[day] += 1
    return counts


def one_delivery(row, type_names, now, rng, enc, made, events, deliveries, attempts):
    """Append one delivery's event, delivery and attempts rows."""
    at, scope, webhook, url, status, tries, code, error = row
    millis = int(at.timestamp() * 1000)
    event, delivery = uuid7(millis), uuid7(millis)
    kind = type_names[rng.randrange(len(type_names))]
    events.append(
        (
            enc.uuid(event),
            kind,
            json.dumps({"id": rng.randrange(10**9), "title": "Scale test"}),
            scope,
            "testapp.article",
            str(rng.randrange(10**6)),
            enc.time(at),
            enc.time(at),
        )
    )
    last = at + timedelta(minutes=5 * (2 ** (tries - 1) - 1))
    deliveries.append(
        (
            enc.uuid(delivery),
            enc.uuid(event),
            enc.uuid(webhook),
            status,
            tries,
            enc.time(now + timedelta(minutes=30)) if status == "pending" else None,
            code,
            error,
            enc.time(last),
            enc.time(at),
            enc.time(last),
        )
    )
    made.statuses[status] += 1
    headers = json.dumps(
        {
            "content-type": "application/json",
            "webhook-id": f"msg_{delivery.hex}",
            "webhook-timestamp": str(int(at.timestamp())),
        }
    )
    for number in range(1, tries + 1):
        ok = status == "succeeded" and number == tries
        refused = not ok and code is None
        attempts.append(
            (
                enc.uuid(delivery),
                number,
                "automatic",
                url,
                headers,
                "",
                None if refused else 200 if ok else (code or 503),
                "{}" if refused else '{"content-type": "text/plain"}',
                "" if refused else "ok" if ok else "Service unavailable",
                rng.randint(20, 900),
                enc.flag(ok),
                "" if ok else "connection_refused" if refused else "http_5xx",
                "Connection refused" if refused else "",
                enc.time(at + timedelta(minutes=5 * (2 ** (number - 1) - 1))),
            )
        )


# -- writing --------------------------------------------------------------------------------


class Writer:
    """COPY on PostgreSQL, ``executemany`` on SQLite."""

    def __init__(self, connection) -> None:
        self.connection = connection
        self.postgres = connection.vendor == "postgresql"

    def write(self, table: str, columns: list[str], rows: list[tuple]) -> None:
        if not rows:
            return
        with self.connection.cursor() as cursor:
            if self.postgres:
                names = ", ".join(columns)
                with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                marks = ", ".join(["%s"] * len(columns))
                cursor.executemany(
                    f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows
                )


BULK_TABLES = ("webhooks_event", "webhooks_delivery", "webhooks_deliveryattempt")


def drop_indexes(cursor) -> list[str]:
    """Drop the bulk tables' constraints and indexes (all but the primary keys of the
    tables others point at are rebuilt faster after the load); return how to rebuild them."""
    cursor.execute(
        """
        SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
        FROM pg_constraint
        WHERE conrelid::regclass::text = ANY(%s) AND contype IN ('p', 'u', 'f')
        ORDER BY contype = 'f' DESC, contype = 'u' DESC
        """,
        [list(BULK_TABLES)],
    )
    constraints = cursor.fetchall()
    rebuild = [
        f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}'
        for table, name, definition in reversed(constraints)
    ]
    for table, name, _ in constraints:
        cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    cursor.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s)",
        [list(BULK_TABLES)],
    )
    indexes = cursor.fetchall()
    for name, _ in indexes:
        cursor.execute(f'DROP INDEX "{name}"')
    return [definition for _, definition in indexes] + rebuild


def generate(
    *,
    attempts: int,
    webhooks: int,
    tenants: int,
    big_share: float = 0.8,
    seed: int = 23,
    analyse: bool = True,
) -> Made:
    """Write the data set into the default database (migrated, and empty of webhooks)."""
    from django.db import connection, transaction

    from webhooks import health_hours
    from webhooks.models import DeliveryAttempt, EventType, HealthHour

    if connection.vendor not in ("postgresql", "sqlite"):
        raise SystemExit(
            f"bench.datagen fills PostgreSQL or SQLite, not {connection.vendor}: set "
            "DATABASE_URL=postgres://… (or leave it unset for SQLite)."
        )
    rng = random.Random(seed)
    made = Made()
    clock = time.perf_counter()
    now = datetime.now(UTC)
    enc = Encoder(connection.vendor)
    writer = Writer(connection)

    scopes, big_user = people(tenants)
    made.tenants = len(scopes)
    made.big_scope = scopes[0]
    type_ids = dict(EventType.objects.values_list("id", "name"))
    if not type_ids:
        raise SystemExit("No event types: run the example project's migrations first.")

    # Big keeps a tenth of the webhooks (at least 1); the others share the rest evenly.
    big_webhooks = max(1, min(webhooks // 10, webhooks - (len(scopes) - 1)))
    rest = webhooks - big_webhooks
    per_tenant = [big_webhooks] + [
        rest // (len(scopes) - 1) + (1 if i < rest % (len(scopes) - 1) else 0)
        for i in range(len(scopes) - 1)
    ]
    subscriptions, wanted, by_tenant = webhook_rows(
        scopes, per_tenant, type_ids, now, rng, enc, made
    )

    # Who gets the attempts: Big's share, half of it on its first (busy) webhook, the rest
    # over its other webhooks; the others' share over up to 1,000 of their webhooks.
    big_hooks = by_tenant[scopes[0]]
    big_total = int(attempts * big_share) if len(scopes) > 1 else attempts
    made.big_webhook = str(big_hooks[0][0])
    made.big_attempts = big_total
    targets = spread(scopes[0], big_hooks, big_total, busy=0.5)
    others = [(scope, hook) for scope in scopes[1:] for hook in by_tenant[scope]]
    rng.shuffle(others)
    others = others[:1000]
    targets += [
        t
        for i, (scope, hook) in enumerate(others)
        for t in spread(scope, [hook], share(attempts - big_total, len(others), i), busy=1.0)
    ]
    made.seconds["people_and_webhooks"] = round(time.perf_counter() - clock, 1)

    clock = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        rebuild = []
        if writer.postgres:
            cursor.execute("SET LOCAL synchronous_commit = off")
            cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
            rebuild = drop_indexes(cursor)
        writer.write("webhooks_subscription", SUBSCRIPTION_COLUMNS, subscriptions)
        writer.write(
            "webhooks_subscription_event_types", ["subscription_id", "eventtype_id"], wanted
        )
        names = sorted(type_ids.values())
        for events, deliveries, tries in activity_rows(targets, names, now, rng, enc, made):
            writer.write("webhooks_event", EVENT_COLUMNS, events)
            writer.write("webhooks_delivery", DELIVERY_COLUMNS, deliveries)
            writer.write("webhooks_deliveryattempt", ATTEMPT_COLUMNS, tries)
        made.seconds["copy"] = round(time.perf_counter() - clock, 1)
        clock = time.perf_counter()
        for statement in rebuild:
            cursor.execute(statement)
        made.seconds["indexes"] = round(time.perf_counter() - clock, 1)
    # The hourly health rows the recorder would have kept (migration 0014 ran on empty
    # tables): without them every success rate and health figure reads nothing.
    clock = time.perf_counter()
    health_hours.backfill(HealthHour, DeliveryAttempt, now)
    made.seconds["health_hours"] = round(time.perf_counter() - clock, 1)
    if analyse:
        clock = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE" if writer.postgres else "ANALYZE")
        made.seconds["analyse"] = round(time.perf_counter() - clock, 1)
    del big_user
    return made


def share(total: int, parts: int, i: int) -> int:
    return total // parts + (1 if i < total % parts else 0)


def spread(scope, hooks, total, *, busy):
    """(scope, webhook id, url, attempts) for ``hooks`` of ``scope``: ``busy`` of ``total``
    on the first, the rest evenly over the others (disabled ones get theirs too: from
    before they were disabled)."""
    first = int(total * busy) if len(hooks) > 1 else total
    url = lambda i: f"{RECEIVER}/{scope.replace(':', '-')}/{i}"  # noqa: E731
    out = [(scope, hooks[0][0], url(0), first)]
    rest = hooks[1:]
    out += [
        (scope, pk, url(i + 1), share(total - first, len(rest), i))
        for i, (pk, _, _) in enumerate(rest)
    ]
    return [t for t in out if t[3] > 0]


def people(tenants: int) -> tuple[list[str], object]:
    """The organisations (Big first), Big's staff member and a superuser; their scopes."""
    from django.contrib.auth import get_user_model

    from example_project.demo.seed import webhook_managers
    from example_project.organisations.models import Membership, Organisation

    User = get_user_model()
    orgs = Organisation.objects.bulk_create(
        [Organisation(name=BIG, slug="big")]
        + [Organisation(name=f"Tenant {i}", slug=f"tenant-{i}") for i in range(1, tenants)]
    )
    staff = User.objects.create_user("big-staff", password="pw", is_staff=True)
    staff.groups.add(webhook_managers())
    Membership.objects.create(user=staff, organisation=orgs[0])
    User.objects.create_superuser("scale-admin", "scale-admin@example.com", "pw")
    return [org.scope for org in orgs], staff


def counted() -> dict:
    """The figures of the tables, as the app's models count them."""
    from django.db.models import Count

    from webhooks.models import Delivery, DeliveryAttempt, Event, Subscription

    return {
        "webhooks": Subscription.objects.count(),
        "events": Event.objects.count(),
        "deliveries": Delivery.objects.count(),
        "attempts": DeliveryAttempt.objects.count(),
        "statuses": dict(Delivery.objects.order_by().values_list("status").annotate(n=Count("pk"))),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attempts", type=count, default=count("100k"))
    parser.add_argument("--webhooks", type=count, default=count("1k"))
    parser.add_argument("--tenants", type=count, default=100)
    parser.add_argument("--big-share", type=float, default=0.8)
    parser.add_argument("--no-check", action="store_true", help="skip counting the rows back")
    args = parser.parse_args(argv)

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    made = generate(
        attempts=args.attempts,
        webhooks=args.webhooks,
        tenants=min(args.tenants, args.webhooks),
        big_share=args.big_share,
    )
    report = {**made.__dict__, "total_seconds": round(time.perf_counter() - started, 1)}
    if not args.no_check:
        report["counted"] = counted()
    sys.stdout.write(json.dumps(report) + "\n")


if __name__ == "__main__":
    main()
