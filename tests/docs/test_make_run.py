"""`make run PORT=…` end to end: seeded demo, logins and links on that port, a delivery to the
demo receiver on that port, and a Ctrl-C that says what it does and returns within seconds."""

import http.cookiejar
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest

from tests.test_serve import example_env

from .conftest import ROOT, _gone, answers, free_port, manage, wait_for


def test_make_run_on_another_port_then_ctrl_c(tmp_path):
    env = example_env(tmp_path)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # The suite's interpreter stands in for .venv/bin/python; the virtualenv is not rebuilt.
    make = subprocess.Popen(
        ["make", "-o", ".venv/.installed", "run", f"PORT={port}", f"PY={sys.executable}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # a terminal of its own: Ctrl-C reaches make and serve
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(make.stdout), daemon=True)
    reader.start()
    output = lambda: "".join(lines)  # noqa: E731
    try:
        wait_for(lambda: answers(f"{base}/admin/login/"), 120, "the web server")
        wait_for(lambda: "Ctrl-C stops both" in output(), 10, "the serve banner")
        printed = output()
        assert f"Webhook for org:1: all events -> {base}/demo-receiver/northwind/" in printed
        assert "username 'alice', password 'alice'" in printed
        assert "username 'bob', password 'bob'" in printed
        assert f"admin           {base}/admin/" in printed
        assert f"Admin: {base}/admin/" in printed
        assert ":8000" not in printed
        assert f"customer login  {base}/accounts/login/  (login alice / alice" in printed

        # The printed magic link opens Northwind's webhooks in the portal, once, on this port.
        [link] = re.findall(rf"magic link +({re.escape(base)}/\S+/link/\S+/)", printed)
        browser = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        with browser.open(link) as portal:  # 303 to the portal, with the session's cookie
            assert portal.url == f"{base}/settings/integrations/webhooks/"
            page = portal.read().decode()
        assert "/demo-receiver/northwind/" in page and "Northstar Assessments" in page
        assert "contoso" not in page
        with pytest.raises(urllib.error.HTTPError) as again:
            browser.open(link)
        assert again.value.code == 410

        # The seeded webhook reaches the demo receiver on this port, through the workers.
        manage(
            env,
            "shell",
            "-c",
            "import webhooks; webhooks.send_event('webhook.test', {'via': 'make run'}, "
            "scope='org:1')",
            capture_output=True,
        )

        def delivered():
            with urllib.request.urlopen(f"{base}/demo-receiver/northwind/") as response:
                return 'class="ok"' in response.read().decode()

        wait_for(delivered, 90, "the delivery to the demo receiver")
        pids = [int(p) for p in re.findall(r"pid (\d+)", output())]
        assert len(pids) == 2
    finally:
        pressed = time.monotonic()
        os.killpg(make.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        try:
            make.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(make.pid, signal.SIGKILL)
            raise
    took = time.monotonic() - pressed
    reader.join(timeout=10)
    assert "Stopping web server and queue workers…" in output()
    assert "Stopped the web server and the queue workers" in output()
    # It used to wait 15 s for qcluster, then kill it; now a few seconds. Generous for a
    # loaded machine, and still well under the old wait.
    assert took < 12, f"Ctrl-C took {took:.1f} s"
    for pid in pids:
        wait_for(lambda pid=pid: _gone(pid), 20, f"pid {pid} to exit")
