"""What `make run` shows a new user: seeded demo, web server and queue workers running,
`simulate_activity` in another terminal, and every event arriving signature-checked at the
demo receiver — through real processes, the ORM broker and HTTP."""

import re
import urllib.request

import pytest

from tests.test_serve import (
    _gone,
    example_env,
    free_port,
    interrupt,
    manage,
    start_serve,
    wait_for,
)


@pytest.fixture
def project_env(tmp_path):
    env = example_env(tmp_path)
    env.pop("REDIS_URL", None)  # what `make run` uses: the ORM broker
    return env


def test_simulated_activity_arrives_verified_at_the_demo_receiver(project_env):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    manage(project_env, "migrate", "--noinput", capture_output=True)
    seeded = manage(
        project_env, "seed_demo", "--receiver-base", base, capture_output=True, text=True
    ).stdout
    assert "username 'admin', password 'admin'" in seeded
    server = start_serve(project_env, port)
    pids = [int(p) for p in re.findall(r"pid (\d+)", server.stdout.readline())]

    def page(slug):
        try:
            with urllib.request.urlopen(f"{base}/demo-receiver/{slug}/") as response:
                return response.read().decode()
        except OSError:
            return ""

    try:
        wait_for(lambda: page("northwind"), 60, "the web server")
        simulated = manage(project_env, "simulate_activity", capture_output=True, text=True).stdout
        total = int(re.search(r"(\d+) events in all", simulated).group(1))
        wait_for(lambda: page("northwind").count('class="ok"') >= total, 90, "every delivery")
        inbox = page("northwind")
        assert 'class="bad"' not in inbox
        for event_type in ["item.deleted", "exam.awaitingPaperResponseUpload", "invite.sent"]:
            assert f"<strong>{event_type}</strong>" in inbox
        assert "Nothing yet" in page("contoso")  # the other organisation hears nothing
    finally:
        interrupt(server)
    for pid in pids:
        wait_for(lambda pid=pid: _gone(pid), 20, f"pid {pid} to exit")
