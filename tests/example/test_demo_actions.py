"""The admin's "Send test event" and "Resend" against the example project's own demo
receiver, on SQLite, through real processes (`manage.py serve`): the request answers at
once and the demo receiver gets and verifies the event. (They used to POST inside the
admin request's transaction, and the demo receiver, waiting for SQLite's write lock the
sender held, always timed out.)"""

import re
import time

import requests

from tests.example.test_demo_end_to_end import project_env  # noqa: F401 - a fixture
from tests.test_serve import _gone, free_port, interrupt, manage, start_serve, wait_for


def test_test_event_and_resend_from_the_admin_reach_the_demo_receiver(project_env):  # noqa: F811
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    manage(project_env, "migrate", "--noinput", capture_output=True)
    manage(project_env, "seed_demo", "--receiver-base", base, capture_output=True)
    sub_id = manage(
        project_env,
        "shell",
        "-c",
        "from webhooks.models import Subscription; "
        "print(Subscription.objects.get(url__contains='/northwind/').pk)",
        capture_output=True,
        text=True,
    ).stdout.split()[-1]
    server = start_serve(project_env, port)
    pids = [int(p) for p in re.findall(r"pid (\d+)", server.stdout.readline())]
    admin = requests.Session()

    def inbox() -> str:
        try:
            return requests.get(f"{base}/demo-receiver/northwind/", timeout=10).text
        except requests.RequestException:
            return ""

    def post(path: str) -> requests.Response:
        token = admin.cookies["csrftoken"]
        started = time.monotonic()
        response = admin.post(
            base + path, data={"csrfmiddlewaretoken": token}, timeout=30, allow_redirects=False
        )
        assert time.monotonic() - started < 5  # nothing sent while the request waits
        return response

    try:
        wait_for(inbox, 60, "the web server")
        admin.get(f"{base}/admin/login/", timeout=10)
        admin.post(
            f"{base}/admin/login/",
            data={
                "username": "admin",
                "password": "admin",
                "csrfmiddlewaretoken": admin.cookies["csrftoken"],
                "next": "/admin/",
            },
            timeout=10,
        )
        assert post(f"/admin/webhooks/subscription/{sub_id}/send-test/").status_code == 302
        wait_for(lambda: "<strong>webhook.test</strong>" in inbox(), 60, "the test event")
        assert 'class="bad"' not in inbox()
        delivery_id = manage(
            project_env,
            "shell",
            "-c",
            "from webhooks.models import Delivery; "
            "d = Delivery.objects.get(event__type='webhook.test'); print(d.pk, d.status)",
            capture_output=True,
            text=True,
        ).stdout.split()[-2:]
        assert delivery_id[1] == "succeeded"
        assert post(f"/admin/webhooks/delivery/{delivery_id[0]}/resend/").status_code == 302
        wait_for(lambda: inbox().count("<strong>webhook.test</strong>") == 2, 60, "the resend")
        assert 'class="bad"' not in inbox()
    finally:
        interrupt(server)
    for pid in pids:
        wait_for(lambda pid=pid: _gone(pid), 20, f"pid {pid} to exit")
