"""``python -m tests.reliability.sqlite_writer N PREFIX``: N saves as a web worker makes them.

Each save is a transaction that reads first (as a request reads its session and user
under ATOMIC_REQUESTS) and then writes: the pattern SQLite answers with an immediate
"database is locked" when another process writes, unless transactions take the write
lock at BEGIN. Prints ``{"committed": n, "failed": [...]}``.
"""

import json
import sys

import django

django.setup()

from django.db import transaction  # noqa: E402

from tests.testapp.models import Article  # noqa: E402


def main(count: int, prefix: str) -> dict:
    committed, failed = 0, []
    for n in range(count):
        try:
            with transaction.atomic():
                Article.objects.filter(title__startswith=prefix).exists()
                Article.objects.create(title=f"{prefix}{n}")
            committed += 1
        except Exception as exc:  # noqa: BLE001 - counted and reported
            failed.append(f"{type(exc).__name__}: {exc}"[:200])
    return {"committed": committed, "failed": failed}


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]), sys.argv[2])))
