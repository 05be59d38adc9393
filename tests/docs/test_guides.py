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
from pathlib import Path

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
