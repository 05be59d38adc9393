"""Two roles for measuring how long a page view waits for another process's write on SQLite.

``python -m tests.reliability.sqlite_page_view hold SECONDS``: takes the write lock (a
transaction that saves an article), prints ``holding``, keeps it SECONDS, commits.

``python -m tests.reliability.sqlite_page_view view [atomic-requests]``: signs a staff user
in, prints ``ready``, then for each line read from stdin times one GET of the admin's
index page (it reads the session, the user and the app list) through the settings' whole
middleware stack and prints ``{"seconds": …, "status": …}``. With ``atomic-requests``, the
settings the README recommended before: ``ATOMIC_REQUESTS`` on, no
``AtomicUnsafeRequestsMiddleware``.
"""

import json
import sys
import time

import django

if __name__ == "__main__" and sys.argv[2:3] == ["atomic-requests"]:
    from django.conf import settings

    django.setup()  # before any connection is made: the settings it will read
    settings.DATABASES["default"]["ATOMIC_REQUESTS"] = True
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if "AtomicUnsafe" not in m]
else:
    django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import transaction  # noqa: E402
from django.test import Client  # noqa: E402

from tests.testapp.models import Article  # noqa: E402


def hold(seconds: float) -> None:
    with transaction.atomic():
        Article.objects.create(title="held")
        print("holding", flush=True)
        time.sleep(seconds)


def view() -> None:
    user, _ = get_user_model().objects.get_or_create(
        username="page-viewer", defaults={"is_staff": True, "is_superuser": True}
    )
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]  # the test client's
    client = Client()
    client.force_login(user)
    client.get("/admin/")  # warm: imports, templates
    print("ready", flush=True)
    for _line in sys.stdin:
        start = time.perf_counter()
        status = client.get("/admin/").status_code
        print(json.dumps({"seconds": time.perf_counter() - start, "status": status}), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "hold":
        hold(float(sys.argv[2]))
    else:
        view()
