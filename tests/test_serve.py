"""The real path: `manage.py serve` runs the web server and a qcluster; an event is delivered
by a real worker through the configured broker; Ctrl-C stops everything."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def example_env(tmp_path) -> dict:
    """The example settings on a SQLite file of this test's own and a queue of its own
    (the broker follows ``REDIS_URL``, as for a user)."""
    env = {**os.environ}
    env["DJANGO_SETTINGS_MODULE"] = "example_project.settings"
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'example.sqlite3'}"
    env["Q_NAME"] = f"webhooks-test-{uuid.uuid4().hex[:8]}"
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture
def project_env(tmp_path):
    return example_env(tmp_path)


def manage(env, *args, **kwargs):
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, timeout=120, **kwargs
    )


def start_serve(env, port: int, *, output: bool = True) -> subprocess.Popen:
    """``manage.py serve`` on 127.0.0.1:port; its output piped (text) unless not wanted."""
    pipe = subprocess.PIPE if output else subprocess.DEVNULL
    return subprocess.Popen(
        [sys.executable, "manage.py", "serve", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=pipe,
        stderr=subprocess.STDOUT if output else subprocess.DEVNULL,
        text=True,
    )


def interrupt(server: subprocess.Popen, timeout: float = 40) -> None:
    """Ctrl-C, as a terminal sends it; a server still running after ``timeout`` fails the test."""
    server.send_signal(signal.SIGINT)
    try:
        server.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        server.kill()
        raise


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_serve_delivers_through_a_real_worker_and_stops_on_ctrl_c(project_env, receiver):
    manage(project_env, "migrate", "--noinput", capture_output=True)
    manage(
        project_env,
        "shell",
        "-c",
        "from webhooks.models import Subscription; "
        f"Subscription.objects.create(url='{receiver.url}', all_events=True)",
    )
    port = free_port()
    server = start_serve(project_env, port)
    try:
        banner = server.stdout.readline()
        pids = [int(p) for p in re.findall(r"pid (\d+)", banner)]
        assert len(pids) == 2, banner

        def admin_answers():
            try:
                return urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/login/").status == 200
            except OSError:
                return False

        wait_for(admin_answers, 60, "the web server")
        manage(
            project_env,
            "shell",
            "-c",
            "import webhooks; webhooks.send_event('webhook.test', {'hello': 'world'})",
        )
        wait_for(lambda: receiver.requests, 60, "the worker to deliver the event")
        assert receiver.requests[0].json()["data"] == {"hello": "world"}
    finally:
        interrupt(server)
    assert server.returncode is not None
    for pid in pids:
        wait_for(lambda pid=pid: _gone(pid), 20, f"pid {pid} to exit")
        # and every process it forked (qcluster's workers, monitor, pusher)
        wait_for(lambda pid=pid: not _group_members(pid), 20, f"process group {pid} to empty")


def _gone(pid: int) -> bool:
    """Exited: no such process, or a zombie waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except OSError:
        return True


def _group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a process group."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(") ", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members
