"""Run the web server and the django-q2 workers together; Ctrl-C stops both."""

import os
import signal
import subprocess
import sys
import time

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run the web server and the queue workers (qcluster) together until Ctrl-C."

    def add_arguments(self, parser):
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")

    def handle(self, *args, addrport, **options):
        manage = [sys.executable, "manage.py"]
        # Each child leads a process group of its own, so stopping reaches every process
        # qcluster forks (its workers, monitor, pusher), not only the one we started.
        children = [
            subprocess.Popen(
                [*manage, "runserver", "--noreload", addrport], start_new_session=True
            ),
            subprocess.Popen([*manage, "qcluster"], start_new_session=True),
        ]
        self.stdout.write(
            f"Web server on http://{addrport}/ (pid {children[0].pid}) and queue workers "
            f"(pid {children[1].pid}) started. Ctrl-C stops both."
        )
        self.stdout.write(
            f"Admin: http://{addrport}/admin/ · demo receiver: http://{addrport}/demo-receiver/ · "
            "events: run `.venv/bin/python manage.py simulate_activity` in another terminal."
        )
        self.stdout.flush()
        stopping = False

        def stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping and all(child.poll() is None for child in children):
                time.sleep(0.2)
        finally:
            _stop_groups(children)
        self.stdout.write("Stopped the web server and the queue workers.")


def _stop_groups(children, grace: float = 15.0) -> None:
    """SIGTERM every child's process group; SIGKILL whatever is left after ``grace`` seconds.

    A worker killed mid-delivery is safe: its lease expires and the delivery is sent again.
    """
    for child in children:
        _signal_group(child.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for child in children:
        while True:
            child.poll()  # reap the group leader once it exits, or it lingers as a zombie
            late = time.monotonic() > deadline
            if not _signal_group(child.pid, signal.SIGKILL if late else 0) or (
                late and child.returncode is not None
            ):
                break
            time.sleep(0.2)


def _signal_group(pgid: int, signum: int) -> bool:
    """Send ``signum`` to a process group; False once the group has no process left."""
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        return False
    return True
