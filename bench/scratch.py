"""What the in-process benchmarks (admin pages, portal pages, a webhook's figures, the
purge) share: a throw-away database of their own, a page's server time, and their results
written beside earlier ones, keyed by database.

Call after ``django.setup()``; SQLite gets a temporary file, a server a database named
``<name>_<purpose>`` (never the test database a test run may be using at the same time).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def scratch_database(purpose: str):
    import django  # noqa: F401 - set up by the caller
    from django.db import connection
    from django.test.utils import setup_test_environment

    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        folder = tempfile.mkdtemp(prefix=f"{purpose.replace('_', '-')}-")
        db["TEST"]["NAME"] = str(Path(folder) / "bench.sqlite3")
    else:
        db["TEST"]["NAME"] = f"{db['NAME']}_{purpose}"
    setup_test_environment()
    old_name = db["NAME"]
    connection.creation.create_test_db(verbosity=0, keepdb=False)
    try:
        yield connection
    finally:
        connection.close()
        connection.creation.destroy_test_db(old_name, verbosity=0)


def save_results(out: str | Path, results: dict, command: str) -> None:
    """Add the machine and the command to ``results``, store them under this database's
    name in ``out`` (other databases' results stay), and print them."""
    import django
    from django.db import connection

    results.update(
        {
            "database": connection.vendor,
            "python": platform.python_version(),
            "django": django.get_version(),
            "cpus": os.cpu_count(),
            "command": command + (" (DATABASE_URL set)" if os.environ.get("DATABASE_URL") else ""),
        }
    )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    existing = json.loads(out.read_text()) if out.exists() else {}
    existing[connection.vendor] = results
    out.write_text(json.dumps(existing, indent=2) + "\n")
    print(json.dumps(results, indent=2))


def timed_page(client, url: str, repeat: int) -> dict:
    """A page's server time through Django's test client: after one warm-up request, the
    median and worst of ``repeat`` requests, its queries, and the median slowest query."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(url)  # warm up
    times, slowest, statuses = [], [], set()
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - started) * 1000)
        statuses.add(response.status_code)
        slowest.append(max((float(q["time"]) for q in queries.captured_queries), default=0) * 1000)
    return {
        "status": response.status_code if len(statuses) == 1 else sorted(statuses),
        "median_ms": round(statistics.median(times), 1),
        "max_ms": round(max(times), 1),
        "queries": len(queries),
        "slowest_query_ms": round(statistics.median(slowest), 1),
    }
