"""Run the web server and the django-q2 workers together; Ctrl-C stops both."""

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
        children = [
            subprocess.Popen([*manage, "runserver", "--noreload", addrport]),
            subprocess.Popen([*manage, "qcluster"]),
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
            for child in children:
                if child.poll() is None:
                    # SIGTERM, not SIGINT: a child started from a non-interactive shell
                    # inherits an ignored SIGINT (runserver would never stop).
                    child.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 15
            for child in children:
                try:
                    child.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
        self.stdout.write("Stopped the web server and the queue workers.")
