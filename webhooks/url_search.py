"""Finding webhooks by a part of their URL (the admin's delivery log search) without reading
every webhook: on PostgreSQL, a trigram index (``pg_trgm``) on ``LOWER(url)``.

``url LIKE '%…%'`` cannot use a b-tree: it reads the whole webhook table (100,000 rows at
the scale of issue 23: 50–160 ms) and, knowing nothing of the values, PostgreSQL guesses
that a handful match. The GIN index answers the ``LIKE`` from the trigrams of the term,
and ``ANALYZE`` keeps statistics of its expression, so the planner also knows how many
webhooks match: their deliveries can then be read by a subquery (a statement of constant
size) instead of an ``IN`` list of thousands of ids.

Migration 0015 creates it (``create``). ``CREATE EXTENSION pg_trgm`` needs the extension
installed on the server (``postgresql-contrib``) and, since PostgreSQL 13 (a "trusted"
extension), the ``CREATE`` privilege on the database; where it cannot be created the
migration says so and goes on: the search works as before, without the index. SQLite and
MariaDB have no such index: nothing to do there.
"""

from __future__ import annotations

from django.db import DatabaseError, transaction

EXTENSION = "pg_trgm"
INDEX = "webhooks_subscription_url_trgm"

#: Databases (alias, name) found to hold the index: looked up once per process.
_ready: set[tuple[str, str]] = set()


def extension_problem(connection) -> str:
    """Why ``pg_trgm`` cannot be used on ``connection`` (a PostgreSQL one), or "" once it is
    installed in the database (created here if need be, in a savepoint: a refusal leaves
    the caller's transaction usable)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT installed_version FROM pg_available_extensions WHERE name = %s", [EXTENSION]
        )
        row = cursor.fetchone()
    if row is None:
        return f"the extension {EXTENSION} is not available on this server (postgresql-contrib)"
    if row[0] is not None:
        return ""
    try:
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            cursor.execute(f"CREATE EXTENSION IF NOT EXISTS {EXTENSION}")
    except DatabaseError as exc:
        reason = str(exc).strip().splitlines()[0]
        return f"CREATE EXTENSION {EXTENSION} was refused ({reason})"
    return ""


def create(connection, table: str, say=print) -> bool:
    """Create the index on PostgreSQL (True), or say why not (False). Nothing elsewhere."""
    if connection.vendor != "postgresql":
        return False
    problem = extension_problem(connection)
    if problem:
        say(
            f"\n  Skipped the index {INDEX}: {problem}. The admin's search by URL works "
            f"without it, reading every webhook. To add it later: as a superuser, "
            f"CREATE EXTENSION {EXTENSION}; then run "
            f"`manage.py migrate webhooks 0014` and `manage.py migrate webhooks`."
        )
        return False
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE INDEX IF NOT EXISTS {quote(INDEX)} ON {quote(table)} "
            f"USING gin ((LOWER({quote('url')}::text)) gin_trgm_ops)"
        )
        cursor.execute(f"ANALYZE {quote(table)}")  # the expression's statistics, now
    return True


def drop(connection) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"DROP INDEX IF EXISTS {connection.ops.quote_name(INDEX)}")
    _ready.clear()


def indexed(connection) -> bool:
    """Whether the webhooks' URLs have the trigram index on ``connection``'s database (a
    look-up while it has not: after a migration that added it, no restart is needed)."""
    if connection.vendor != "postgresql":
        return False
    key = (connection.alias, str(connection.settings_dict.get("NAME")))
    if key not in _ready:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_indexes WHERE indexname = %s", [INDEX])
            if cursor.fetchone():
                _ready.add(key)
    return key in _ready
