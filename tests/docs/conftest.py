import re
import urllib.request
from types import SimpleNamespace

import pytest

from tests.test_serve import (
    ROOT,
    _gone,
    example_env,
    free_port,
    interrupt,
    manage,
    start_serve,
    wait_for,
)


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def live_example(tmp_path_factory):
    """The example project as `make run` leaves it: migrated, seeded, `serve` running on a
    free port of this test's own, on a SQLite file of its own."""
    env = example_env(tmp_path_factory.mktemp("live"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    manage(env, "migrate", "--noinput", capture_output=True)
    manage(env, "webhooks_sync_event_types", capture_output=True)
    manage(env, "seed_demo", "--receiver-base", base, capture_output=True)
    server = start_serve(env, port, output=False)
    try:
        wait_for(lambda: answers(f"{base}/admin/login/"), 60, "the web server")
        yield SimpleNamespace(env=env, base=base, port=port)
    finally:
        interrupt(server)


def token_for(env, username: str) -> str:
    out = manage(env, "drf_create_token", username, capture_output=True, text=True).stdout
    return re.search(r"Generated token (\w+)", out).group(1)


__all__ = ["ROOT", "_gone", "answers", "free_port", "manage", "token_for", "wait_for"]
