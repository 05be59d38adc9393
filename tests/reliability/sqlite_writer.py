"""``python -m tests.reliability.sqlite_writer N PREFIX``: N saves as a web worker makes them.

Each save is a POST whose view reads first (as a request reads its session and user) and
then writes, run in its transaction by ``AtomicUnsafeRequestsMiddleware`` as the example
project's settings do: the pattern SQLite answers with an immediate "database is locked"
when another process writes, unless transactions take the write lock at BEGIN. Prints
``{"committed": n, "failed": [...]}``.
"""

import json
import sys

import django

django.setup()

from django.http import HttpResponse  # noqa: E402
from django.test import RequestFactory  # noqa: E402

from tests.testapp.models import Article  # noqa: E402
from webhooks.middleware import AtomicUnsafeRequestsMiddleware  # noqa: E402


def save_view(request, title, prefix):
    Article.objects.filter(title__startswith=prefix).exists()
    Article.objects.create(title=title)
    return HttpResponse(status=201)


def main(count: int, prefix: str) -> dict:
    middleware = AtomicUnsafeRequestsMiddleware(lambda request: None)
    committed, failed = 0, []
    for n in range(count):
        request = RequestFactory().post("/articles/")
        try:
            middleware.process_view(request, save_view, (f"{prefix}{n}", prefix), {})
            committed += 1
        except Exception as exc:  # noqa: BLE001 - counted and reported
            failed.append(f"{type(exc).__name__}: {exc}"[:200])
    return {"committed": committed, "failed": failed}


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]), sys.argv[2])))
