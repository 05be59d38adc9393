"""Run the web server and the django-q2 workers together; Ctrl-C stops both within seconds."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from django.core.management.base import BaseCommand

#: How long the queue workers may take to finish their current task after Ctrl-C. A
#: scheduled sweep polls for ~50 s, so waiting for it would make every stop slow.
WORKERS_GRACE = 3.0


class Command(BaseCommand):
    help = "Run the web server and the queue workers (qcluster) together until Ctrl-C."

    def add_arguments(self, parser):
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")

    def handle(self, *args, addrport, **options):
        manage = [sys.executable, "manage.py"]
        # One Prometheus multiprocess directory for both, empty at start: the web server's
        # /metrics/ then adds up the workers' counters.
        metrics_dir = None
        if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
            metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(
                prefix="webhooks-metrics-"
            )
        # Each child leads a process group of its own, so Ctrl-C in the terminal reaches only
        # this command, which then stops each child the way it stops cleanly.
        web = subprocess.Popen(
            [*manage, "runserver", "--noreload", addrport], start_new_session=True
        )
        workers = subprocess.Popen([*manage, "qcluster"], start_new_session=True)
        base = f"http://{addrport}"
        self.stdout.write(
            f"Web server on {base}/ (pid {web.pid}) and queue workers (pid {workers.pid}) "
            "started. Ctrl-C stops both."
        )
        self.stdout.write(
            f"Admin: {base}/admin/ · API: {base}/api/docs/ · demo receiver: "
            f"{base}/demo-receiver/ · metrics: {base}/metrics/ · events: run "
            "`.venv/bin/python manage.py simulate_activity` in another terminal."
        )
        self.stdout.flush()
        stopping = False

        def stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping and web.poll() is None and workers.poll() is None:
                time.sleep(0.2)
        finally:
            for name, child in (("web server", web), ("queue workers", workers)):
                if not stopping and child.returncode is not None:
                    self.stderr.write(f"The {name} exited (code {child.returncode}).")
            self.stdout.write("Stopping web server and queue workers…")
            self.stdout.flush()
            started = time.monotonic()
            killed = stop_children(web, workers)
            elapsed = time.monotonic() - started
            if killed:
                self.stdout.write(
                    f"The queue workers were still busy after {WORKERS_GRACE:.0f} s and were "
                    "stopped hard; an interrupted delivery is sent again once its lease expires."
                )
            self.stdout.write(f"Stopped the web server and the queue workers ({elapsed:.1f} s).")
            if metrics_dir:
                shutil.rmtree(metrics_dir, ignore_errors=True)


def stop_children(web, workers, grace: float = WORKERS_GRACE) -> bool:
    """Stop both children and every process they forked. Returns True if workers were killed.

    The web server stops at once on SIGTERM. qcluster stops cleanly on a SIGTERM to its main
    process only (signalling its whole group kills the sentinel first and leaves the main
    process waiting for it forever); whatever is left after ``grace`` seconds is killed, which
    is safe: a worker's claimed delivery is sent again once its lease expires.
    """
    _signal_group(web.pid, signal.SIGTERM)
    if workers.poll() is None:
        workers.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    killed = False
    for child in (workers, web):
        while True:
            child.poll()  # reap the group leader once it exits, or it lingers as a zombie
            if not _signal_group(child.pid, 0):
                break
            if time.monotonic() > deadline:
                killed = killed or child is workers
                _signal_group(child.pid, signal.SIGKILL)
                if child.returncode is not None:
                    break
            time.sleep(0.1)
    return killed


def _signal_group(pgid: int, signum: int) -> bool:
    """Send ``signum`` to a process group; False once the group has no process left."""
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        return False
    return True
