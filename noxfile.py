"""The supported matrix: one session per Python x Django combination the README claims.

    .venv/bin/nox -l                                   # list the sessions
    .venv/bin/nox -s "tests(python='3.13', django='6.1')"           # the full suite on one
    .venv/bin/nox -t fast -- -m "not slow"   # the combinations between oldest and newest
    .venv/bin/nox -s "tests(python='3.12', django='6.0')" -- -m "not slow"
    .venv/bin/nox -t wagtail                 # webhooks.contrib.wagtail on a real Wagtail site

Arguments after ``--`` go to pytest. The environment (DATABASE_URL, REDIS_URL) is passed
through, so a session runs on PostgreSQL or MariaDB like the main suite does.
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

# Django 6.x needs Python >= 3.12, so Python 3.11 is claimed with Django 5.2 LTS only.
MATRIX = {
    "3.11": ["5.2"],
    "3.12": ["5.2", "6.0", "6.1"],
    "3.13": ["5.2", "6.0", "6.1"],
}
OLDEST = ("3.11", "5.2")  # what `make test` runs in .venv
NEWEST = ("3.13", "6.1")

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

# pyenv installs every version, but its shims only answer for the active one: look in
# its versions/ folder too, so `python3.12` is found however pyenv is set up.
_pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
if _pyenv.is_dir():
    extra = [str(p / "bin") for p in sorted(_pyenv.iterdir(), reverse=True) if p.is_dir()]
    os.environ["PATH"] = os.pathsep.join([*extra, os.environ.get("PATH", "")])


def _combinations():
    for python, djangos in MATRIX.items():
        for django in djangos:
            combination = (python, django)
            tags = (
                ["oldest"]
                if combination == OLDEST
                else ["newest"]
                if combination == NEWEST
                else ["fast"]
            )
            yield nox.param(python, django, tags=tags)


@nox.session
@nox.parametrize(("python", "django"), list(_combinations()))
def tests(session: nox.Session, django: str) -> None:
    """The test suite on one combination (all of it unless told otherwise after --)."""
    major, minor = django.split(".")
    session.install("-e", ".[dev]", f"Django>={django},<{major}.{int(minor) + 1}")
    session.run(
        "python", "-c", "import django, sys; print('Django', django.__version__, sys.version)"
    )
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", *session.posargs)


WAGTAIL_TEST_PACKAGES = ["pytest>=8", "pytest-django>=4.8", "factory-boy>=3.3", "playwright>=1.40"]


@nox.session(python=NEWEST[0], tags=["wagtail"])
def wagtail(session: nox.Session) -> None:
    """A real Wagtail site (tests/wagtail_site) on the newest combination: the Wagtail app
    (its menu, permissions, who may use which admin, a page published in a browser) and the
    Wagtail recipe of docs/host-developers.md."""
    major, minor = NEWEST[1].split(".")
    # Only what these tests use (not all of [dev]): the session stays short in CI.
    session.install(
        "-e",
        ".",
        f"Django>={NEWEST[1]},<{major}.{int(minor) + 1}",
        "wagtail>=7",
        *WAGTAIL_TEST_PACKAGES,
    )
    session.run(
        "python", "-c", "import django, wagtail; print(django.__version__, wagtail.__version__)"
    )
    session.run(
        "python",
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "--ds=tests.wagtail_site.settings",
        "tests/wagtail_site",
        *session.posargs,
    )
