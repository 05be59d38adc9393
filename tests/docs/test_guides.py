"""The guides in docs/ are run: each block marked ``<!-- file: PATH -->`` is written into a
copy of ``guide_project/`` (the host project the guides speak of) and then used — the host
developers' declarations and tests under pytest, the receivers' code against real signed
deliveries, the operators' commands and settings against the example project."""

import configparser
import importlib.util
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
import uuid
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.utils import timezone

import webhooks
from webhooks import actions
from webhooks.delivery import close_connections
from webhooks.models import Delivery, Event, Subscription
from webhooks.signing import generate_secret, signature_header

from ..test_serve import _group_members, example_env
from .codeblocks import ROOT, WAGTAIL_RECIPE, files, runnable
from .conftest import answers, free_port, wait_for

DOCS = ROOT / "docs"
GUIDE_PROJECT = Path(__file__).parent / "guide_project"

# What the guide claims beyond its own tests: the tenancy resolver.
HOST_CHECKS = """
from django.contrib.auth import get_user_model

from myapp.models import Membership, Organisation
from webhooks.models import Subscription
from webhooks.tenancy import restrict, scope_for_user


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
    made = {
        name: code
        for name, code in files(DOCS / guide).items()
        if not name.startswith(WAGTAIL_RECIPE)
    }
    for relative, code in made.items():
        path = project / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as f:
            f.write(code)
    return project


def run_pytest(
    project: Path, python: str = sys.executable, code: Path = ROOT
) -> subprocess.CompletedProcess:
    """The host project's tests, with ``python`` and the test settings of the checkout ``code``."""
    (project / "pytest.ini").write_text(
        "[pytest]\nDJANGO_SETTINGS_MODULE = docs_settings\naddopts = -p no:cacheprovider\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(project), str(code)])}
    # A database of its own (the outer suite may hold the PostgreSQL test database).
    env["DATABASE_URL"] = f"sqlite:///{project / 'guide.sqlite3'}"
    env.pop("REDIS_URL", None)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run(
        [python, "-m", "pytest", "-q"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def run_host_developers_guide(tmp_path: Path, **python) -> None:
    project = build_guide_project(tmp_path, "host-developers.md")
    (project / "test_guide_claims.py").write_text(textwrap.dedent(HOST_CHECKS))
    guide_tests = (project / "test_myapp_webhooks.py").read_text().count("\ndef test_")
    result = run_pytest(project, **python)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{guide_tests + 1} passed" in result.stdout, result.stdout


def run_portal_guide(tmp_path: Path, **python) -> None:
    project = build_guide_project(tmp_path, "portal.md")
    (project / "mysite" / "__init__.py").touch()
    guide_tests = (project / "test_portal.py").read_text().count("\ndef test_")
    result = run_pytest(project, **python)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{guide_tests} passed" in result.stdout, result.stdout
    run_portal_link_commands(project, **python)


def run_portal_link_commands(project: Path, python: str = sys.executable, code: Path = ROOT):
    """The guide's support commands as written, in the host project, with its virtualenv's
    python first on PATH (activated) and customer 42 on the Pro plan."""
    shutil.copy(code / "manage.py", project / "manage.py")
    # The host project borrows the suite's settings, whose example apps have a Membership
    # too: the clash of reverse names, harmless here, would stop every command.
    (project / "site_settings.py").write_text(
        "from docs_settings import *  # noqa\n\n"
        'SILENCED_SYSTEM_CHECKS = ["fields.E304", "fields.E305"]\n'
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(project), str(code)])}
    env.update(
        DJANGO_SETTINGS_MODULE="site_settings",
        DATABASE_URL=f"sqlite:///{project / 'site.sqlite3'}",
        PATH=os.pathsep.join([str(Path(python).parent), os.environ["PATH"]]),
    )
    env.pop("REDIS_URL", None)
    setup = (
        "python manage.py migrate --run-syncdb --noinput > /dev/null\n"
        "python manage.py shell -c "
        '"from myapp.models import Organisation; '
        "Organisation.objects.create(pk=42, name='Acme')\" > /dev/null\n"
    )
    [block] = runnable(DOCS / "portal.md", "sh")
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", setup + block.code],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    links = result.stdout.split()
    assert len(links) == 2, result.stdout
    assert all(link.startswith("https://webhooks.example.com/") for link in links), links


def test_host_developers_guide_runs(tmp_path):
    run_host_developers_guide(tmp_path)


def test_portal_guide_runs(tmp_path):
    """docs/portal.md's host project: its URLs, layout, resolver, plan gate, magic-link view,
    iframe settings and tests, as written."""
    run_portal_guide(tmp_path)


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
    close_connections()


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


# -- operators --------------------------------------------------------------------------------


SITE = "/srv/mysite"  # where the guide's site lives; each test's site is a directory of its own

# What every Django project has (startproject writes it), for the units' `mysite.wsgi`.
WSGI = """import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
application = get_wsgi_application()
"""


def at_site(text: str, site: Path) -> str:
    """The guide's text, its site moved from /srv/mysite to ``site``: the only change made."""
    return text.replace(SITE, str(site))


def operators_site(tmp_path: Path, venv: Path, code: Path = ROOT) -> SimpleNamespace:
    """The guide's site as a server holds it in /srv/mysite: its files from the guide (units,
    settings), ``manage.py``, the virtualenv ``venv`` as ``.venv``, and the ``.env`` its units
    read. mysite's code is the example project of the checkout ``code`` (on PYTHONPATH), on a
    SQLite file of its own, with DEBUG off as in production."""
    site = build_guide_project(tmp_path, "operators.md")
    (site / "mysite" / "__init__.py").touch()
    (site / "mysite" / "wsgi.py").write_text(WSGI)
    (site / ".venv").symlink_to(venv)
    shutil.copy(code / "manage.py", site / "manage.py")
    # The guide's settings on top of the example project's, BASE_DIR the site's directory,
    # with a short sweep so the test does not wait a whole one out when it stops the workers.
    guide_settings = (site / "mysite" / "settings.py").read_text()
    (site / "prod_settings.py").write_text(
        "from pathlib import Path\n\n"
        "from example_project.settings import *  # noqa\n\n"
        "BASE_DIR = Path(__file__).resolve().parent\n"
        f"{guide_settings}\n"
        "from mysite.webhooks_settings import *  # noqa\n\n"
        "WEBHOOKS_ALLOWED_NETWORKS = ['127.0.0.0/8']  # the test's receiver\n"
        "WEBHOOKS_SWEEP_DURATION = 5\n"
    )
    dotenv = {
        "DJANGO_SETTINGS_MODULE": "prod_settings",
        "DATABASE_URL": f"sqlite:///{site / 'site.sqlite3'}",
        "DEBUG": "false",
        "Q_NAME": f"docs-{uuid.uuid4().hex[:8]}",  # a queue of its own, when on Redis
    }
    (site / ".env").write_text("".join(f"{name}={value}\n" for name, value in dotenv.items()))
    env = {
        k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "VIRTUAL_ENV")
    }
    env.update(PYTHONPATH=str(code), PYTHONUNBUFFERED="1")
    return SimpleNamespace(dir=site, env=env, dotenv=dotenv)


def site_shell(site: SimpleNamespace, script: str, timeout: float = 300) -> str:
    """``script`` in the shell the guide opens (its "Commands on the server" block first);
    what it printed, on stdout and stderr."""
    [opening, *_] = runnable(DOCS / "operators.md", "sh")
    assert opening.code.startswith(f"cd {SITE}\n"), opening.code
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", at_site(opening.code, site.dir) + script],
        env=site.env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, f"{script}\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def deployment_command(command: str, site: Path, port: int) -> list[str]:
    """A command of the guide's unit files, at ``site``, on a free port for 8000."""
    assert "127.0.0.1:8000" in command or "gunicorn" not in command
    return shlex.split(at_site(command, site).replace("127.0.0.1:8000", f"127.0.0.1:{port}"))


def unit(project: Path, name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read(project / "deploy" / name)
    return parser


def deploy_and_check_the_site(site: SimpleNamespace, receiver, deployed: str = "") -> None:
    """The guide's deployment on ``site``: its deploy commands as written (migrate,
    collectstatic, check; unless ``deployed`` is what they printed), then its two units; the
    admin's CSS is served, an event is delivered by the workers, and the workers stop on
    SIGTERM within the unit's grace."""
    web_unit, workers_unit = (
        unit(site.dir, "mysite-web.service"),
        unit(site.dir, "mysite-workers.service"),
    )
    supervisor = unit(site.dir, "supervisor-mysite.conf")
    # The supervisor programs run what the systemd units run.
    assert supervisor["program:mysite-web"]["command"] == web_unit["Service"]["ExecStart"]
    assert supervisor["program:mysite-workers"]["command"] == workers_unit["Service"]["ExecStart"]
    assert workers_unit["Service"]["KillMode"] == "mixed"
    assert web_unit["Service"]["WorkingDirectory"] == SITE
    assert web_unit["Service"]["EnvironmentFile"] == f"{SITE}/.env"
    grace = float(workers_unit["Service"]["TimeoutStopSec"])

    if not deployed:
        [deploy] = [b for b in runnable(DOCS / "operators.md", "sh") if "collectstatic" in b.code]
        deployed = site_shell(site, deploy.code)
    assert "static files copied" in deployed
    # The guide's settings draw no warning of this app's checks, but the test's own receiver
    # on 127.0.0.1 with DEBUG off (W001).
    assert set(re.findall(r"webhooks\.[EW]\d+", deployed)) <= {"webhooks.W001"}, deployed
    assert (site.dir / "static" / "admin" / "css" / "base.css").is_file()
    site_shell(
        site,
        "python manage.py shell -c "
        f'"from webhooks.models import Subscription; '
        f"Subscription.objects.create(url='{receiver.url}', all_events=True)\"",
    )

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    unit_env = {**site.env, **site.dotenv}  # what systemd's EnvironmentFile gives the units
    processes = {
        name: subprocess.Popen(
            deployment_command(unit_file["Service"]["ExecStart"], site.dir, port),
            cwd=site.dir,  # the unit's WorkingDirectory
            env=unit_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for name, unit_file in (("web", web_unit), ("workers", workers_unit))
    }
    try:
        wait_for(lambda: answers(f"{base}/admin/login/"), 60, "gunicorn")
        # The admin comes with its CSS (gunicorn serves no files: collectstatic + WhiteNoise).
        with urllib.request.urlopen(f"{base}/admin/login/", timeout=10) as response:
            stylesheets = re.findall(r'href="(/static/[^"]+\.css)"', response.read().decode())
        assert "/static/admin/css/base.css" in stylesheets
        for stylesheet in stylesheets:
            with urllib.request.urlopen(f"{base}{stylesheet}", timeout=10) as response:
                assert response.status == 200
                assert response.headers["Content-Type"].startswith("text/css")
                assert response.read()

        site_shell(
            site,
            "python manage.py shell -c "
            "\"import webhooks; webhooks.send_event('webhook.test', {'deployed': True})\"",
        )
        wait_for(lambda: receiver.requests, 60, "the workers to deliver")
        assert receiver.requests[0].json()["data"] == {"deployed": True}

        # KillMode=mixed: SIGTERM to the main qcluster process only; it stops in time.
        workers = processes["workers"]
        workers.send_signal(signal.SIGTERM)
        workers.wait(timeout=grace)
        wait_for(lambda: not _group_members(workers.pid), 20, "qcluster's processes to exit")
    finally:
        for process in processes.values():
            if process.poll() is None or _group_members(process.pid):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def this_venv() -> Path:
    """The virtualenv running the suite, as the site's ``.venv``."""
    return Path(sys.executable).parent.parent


def test_operators_guide_deployment_serves_delivers_and_stops(tmp_path, receiver):
    deploy_and_check_the_site(operators_site(tmp_path, this_venv()), receiver)


def test_operators_guide_metrics(db, tmp_path):
    project = build_guide_project(tmp_path, "operators.md")
    metrics = load_module(project / "mysite" / "webhook_metrics.py").webhook_metrics
    now = timezone.now()
    sub = Subscription.objects.create(url="https://example.com/hook", all_events=True)
    Subscription.objects.create(
        url="https://example.com/gone", is_active=False, disabled_reason="410 Gone"
    )
    for minutes_ago, status in [(30, "pending"), (1, "pending"), (-5, "pending"), (0, "failed")]:
        Delivery.objects.create(
            event=Event.objects.create(type="webhook.test", data={}, occurred_at=now),
            subscription=sub,
            status=status,
            next_attempt_at=now - timedelta(minutes=minutes_ago),
        )
    assert metrics(now) == {
        "backlog": 2,  # the one due in 5 minutes is not late
        "oldest_due_seconds": 30 * 60,
        "failed_last_hour": 1,
        "disabled_webhooks": 1,
    }


@pytest.mark.skipif(not Path("/usr/bin/promtool").exists(), reason="promtool not installed")
def test_operators_guide_monitoring_files(tmp_path, monkeypatch):
    """The guide's Prometheus config (with the shipped alert rules) passes promtool, and its
    URLconf and settings lines expose the metrics behind the token."""
    project = build_guide_project(tmp_path, "operators.md")
    deploy = project / "deploy"
    shutil.copy(DOCS / "prometheus-alerts.yml", deploy / "prometheus-alerts.yml")
    token_file = tmp_path / "webhooks-token"
    token_file.write_text("a-token-of-at-least-16-chars")
    config = deploy / "prometheus.yml"
    config.write_text(config.read_text().replace("/etc/prometheus/webhooks-token", str(token_file)))
    done = subprocess.run(
        ["/usr/bin/promtool", "check", "config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout

    monkeypatch.setenv("WEBHOOKS_METRICS_TOKEN", "a-token-of-at-least-16-chars")
    token = load_module(project / "mysite" / "metrics_settings.py").WEBHOOKS_METRICS_TOKEN
    assert token == "a-token-of-at-least-16-chars"
    [route] = load_module(project / "mysite" / "urls_metrics.py").urlpatterns
    match = route.resolve("metrics/")
    assert match.func.__module__ == "webhooks.metrics.views"


def run_operators_commands(site: SimpleNamespace) -> str:
    """Every ``<!-- run -->`` block of the guide as written, in one shell, in its order, on a
    site installed as the guide says (migrated, one webhook with secrets); what they print,
    on stdout and stderr."""
    site_shell(
        site,
        "python manage.py migrate --noinput\n"
        'python manage.py shell -c "from webhooks.models import Subscription; '
        "Subscription.objects.create(url='https://example.com/hook', all_events=True, "
        'is_active=False)"\n',  # secrets to re-encrypt, and no delivery to example.com
    )
    blocks = runnable(DOCS / "operators.md", "sh")
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", "\n".join(at_site(b.code, site.dir) for b in blocks)],
        env=site.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def check_operators_commands_output(seen: str) -> None:
    assert re.search(r"^[A-Za-z0-9_-]{43}=$", seen, re.MULTILINE)  # the key the guide makes
    assert "1 webhooks re-encrypted with the first key." in seen
    assert (
        "Keeping succeeded deliveries 30 days, failed deliveries 90 days, events 90 days." in seen
    )
    assert "Dry run: would delete" in seen and "Deleted " in seen
    assert "static files copied" in seen
    assert "deliveries enqueued" in seen
    assert "| `webhook.test` | Webhooks |" in seen


def test_operators_guide_commands_run(tmp_path):
    check_operators_commands_output(run_operators_commands(operators_site(tmp_path, this_venv())))


def test_host_developers_guide_shows_the_models_its_code_runs_against():
    from .codeblocks import code_blocks

    listing = next(b for b in code_blocks(DOCS / "host-developers.md") if "class Book(" in b.code)
    fields = re.compile(r"^\s*(\w+) = models\.(\w+)\(|^class (\w+)\(", re.MULTILINE)
    shown = set(fields.findall(listing.code))
    assert shown <= set(fields.findall((GUIDE_PROJECT / "myapp" / "models.py").read_text()))
    assert len(shown) > 10  # classes and fields were found at all


def test_operators_guide_lists_every_setting():
    from webhooks.conf import Settings

    names = {n for n, v in vars(Settings).items() if isinstance(v, property)}
    guide = (DOCS / "operators.md").read_text()
    missing = sorted(n for n in names if f"`WEBHOOKS_{n}`" not in guide)
    assert not missing, f"docs/operators.md's settings table lacks {missing}"


TRACED_SAVE = """
from django.core.management import call_command

call_command("migrate", verbosity=0)

from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import webhooks
from mysite.tracing import setup_tracing
from webhooks.models import Event

exporter = InMemorySpanExporter()
setup_tracing(exporter)
with trace.get_tracer("mysite").start_as_current_span("POST /invite"):
    webhooks.send_event("webhook.test", {})
trace.get_tracer_provider().force_flush()
spans = {s.name: s for s in exporter.get_finished_spans()}
assert set(spans) == {"POST /invite", "webhooks publish webhook.test"}, spans
publish = spans["webhooks publish webhook.test"]
assert publish.parent.span_id == spans["POST /invite"].context.span_id
assert Event.objects.get().trace_context.split("-")[2] == f"{publish.context.span_id:016x}"
print("traced")
"""


def test_operators_guide_tracing_setup_traces_an_event(tmp_path):
    pytest.importorskip("opentelemetry.sdk")
    project = build_guide_project(tmp_path, "operators.md")
    (project / "mysite" / "__init__.py").touch()
    # A process of its own: OpenTelemetry's global provider is set once per process.
    env = {
        **example_env(tmp_path),
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PYTHONPATH": os.pathsep.join([str(project), str(ROOT)]),
    }
    env.pop("REDIS_URL", None)
    script = "import django\ndjango.setup()\n" + TRACED_SAVE
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "traced" in done.stdout
