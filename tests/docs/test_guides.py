"""The guides in docs/ are run: each block marked ``<!-- file: PATH -->`` is written into a
copy of ``guide_project/`` (the host project the guides speak of) and then used — the host
developers' declarations and tests under pytest, the receivers' code against real signed
deliveries, the operators' commands and settings against the example project."""

import importlib.util
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest

import webhooks
from webhooks import actions
from webhooks.delivery import session
from webhooks.models import Subscription
from webhooks.signing import generate_secret, signature_header

from .codeblocks import ROOT, files

DOCS = ROOT / "docs"
GUIDE_PROJECT = Path(__file__).parent / "guide_project"

# Stands in for Wagtail where it is not installed: the guide connects to this signal.
WAGTAIL_STUB = {
    "wagtail/__init__.py": "",
    "wagtail/signals.py": "from django.dispatch import Signal\n\npage_published = Signal()\n",
}

# What the guide claims beyond its own tests: the Wagtail receiver and the tenancy resolver.
HOST_CHECKS = """
import pytest
from types import SimpleNamespace

from django.contrib.auth import get_user_model

from myapp.models import Membership, Organisation
from wagtail.signals import page_published
from webhooks.models import Event, Subscription
from webhooks.tenancy import restrict, scope_for_user


def test_wagtail_page_published_raises_page_published(db):
    page = SimpleNamespace(pk=3, title="About us", full_url="https://example.com/about-us/")
    page_published.send(sender=type(page), instance=page, revision=None)
    assert Event.objects.get(type="page.published").data == {
        "id": 3, "title": "About us", "url": "https://example.com/about-us/"
    }


def test_the_resolver_keeps_organisations_apart(db):
    users = get_user_model().objects
    north, south = (Organisation.objects.create(name=n) for n in ("North", "South"))
    alice = users.create_user("alice")
    Membership.objects.create(user=alice, organisation=north)
    for org in (north, south):
        Subscription.objects.create(url="https://example.com/", scope=str(org.pk))
    assert scope_for_user(alice) == str(north.pk)
    assert [s.scope for s in restrict(Subscription.objects.all(), alice)] == [str(north.pk)]
    assert scope_for_user(users.create_superuser("root")) is None
    assert not restrict(Subscription.objects.all(), users.create_user("outsider")).exists()
"""


def build_guide_project(tmp_path: Path, guide: str) -> Path:
    project = tmp_path / "guide_project"
    shutil.copytree(GUIDE_PROJECT, project, ignore=shutil.ignore_patterns("__pycache__"))
    made = files(DOCS / guide)
    if importlib.util.find_spec("wagtail") is None:
        made = {**WAGTAIL_STUB, **made}
    for relative, code in made.items():
        path = project / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as f:
            f.write(code)
    return project


def run_pytest(project: Path, *extra) -> subprocess.CompletedProcess:
    (project / "pytest.ini").write_text(
        "[pytest]\nDJANGO_SETTINGS_MODULE = docs_settings\naddopts = -p no:cacheprovider\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(project), str(ROOT)])}
    # A database of its own (the outer suite may hold the PostgreSQL test database).
    env["DATABASE_URL"] = f"sqlite:///{project / 'guide.sqlite3'}"
    env.pop("REDIS_URL", None)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", *extra],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_host_developers_guide_runs(tmp_path):
    project = build_guide_project(tmp_path, "host-developers.md")
    (project / "test_guide_claims.py").write_text(textwrap.dedent(HOST_CHECKS))
    guide_tests = (project / "test_myapp_webhooks.py").read_text().count("\ndef test_")
    result = run_pytest(project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{guide_tests + 2} passed" in result.stdout, result.stdout


def load_module(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def guide_receiver(tmp_path):
    """The receivers' guide's code behind a real HTTP server on 127.0.0.1: every request
    is recorded and handed to the guide's ``handle``; the first answer is lost (500)."""
    project = build_guide_project(tmp_path, "receivers.md")
    guide = load_module(project / "receiver.py")
    store = str(tmp_path / "receiver.sqlite3")
    state = SimpleNamespace(guide=guide, store=store, secret=None, requests=[])
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            headers = dict(self.headers)
            with lock:
                state.requests.append((headers, body))
                db = guide.open_store(store)  # a connection per request, as a server would
                status = guide.handle(db, state.secret, headers, body)
                db.close()
                if len(state.requests) == 1:
                    status = 500  # processed, but the answer never makes it back
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_port}/hook"
    yield state
    server.shutdown()
    server.server_close()
    session().close()


def test_receivers_guide_verifies_real_deliveries_and_processes_each_once(
    db, guide_receiver, commit, run_due
):
    guide = guide_receiver.guide
    webhook = Subscription.objects.create(url=guide_receiver.url, all_events=True)
    guide_receiver.secret = webhook.secret
    with commit():
        webhooks.send_event("webhook.test", {"hello": "receivers"})
    run_due()  # the first answer was lost: the platform retries

    first, retry = guide_receiver.requests
    assert first[0]["webhook-id"] == retry[0]["webhook-id"]  # the same message, sent again
    for headers, body in (first, retry):
        for verify in (guide.verify_with_library, guide.verify_with_hmac):
            assert verify(webhook.secret, headers, body)["data"] == {"hello": "receivers"}
    assert webhook.deliveries.get().status == "succeeded"
    # …and the guide's handler did the work once.
    db = guide.open_store(guide_receiver.store)
    assert db.execute("SELECT type FROM work").fetchall() == [("webhook.test",)]

    headers, body = first
    forgeries = [
        (webhook.secret, headers, body.replace(b"receivers", b"attackers")),  # tampered body
        (generate_secret(), headers, body),  # another webhook's secret
        (webhook.secret, {**headers, "webhook-id": "msg_other"}, body),  # a reused signature
    ]
    old = int(time.time()) - 3600  # a replay of an hour-old request, genuinely signed
    replayed = {
        **headers,
        "webhook-timestamp": str(old),
        "webhook-signature": signature_header([webhook.secret], headers["webhook-id"], old, body),
    }
    forgeries.append((webhook.secret, replayed, body))
    for secret, forged_headers, forged_body in forgeries:
        with pytest.raises(guide.WebhookVerificationError):
            guide.verify_with_library(secret, forged_headers, forged_body)
        with pytest.raises(guide.NotGenuine):
            guide.verify_with_hmac(secret, forged_headers, forged_body)
        assert guide.handle(db, secret, forged_headers, forged_body) == 401


def test_receivers_guide_accepts_both_secrets_while_one_is_rotated(db, guide_receiver, commit):
    guide = guide_receiver.guide
    webhook = Subscription.objects.create(url=guide_receiver.url, all_events=True)
    old_secret = webhook.secret
    new_secret = actions.rotate_secret(webhook)
    guide_receiver.secret = new_secret
    with commit():
        webhooks.send_event("webhook.test", {"rotating": True})

    headers, body = guide_receiver.requests[0]
    assert len(headers["webhook-signature"].split()) == 2
    for secret in (old_secret, new_secret):
        assert guide.verify_with_library(secret, headers, body)["data"] == {"rotating": True}
        assert guide.verify_with_hmac(secret, headers, body)["data"] == {"rotating": True}
