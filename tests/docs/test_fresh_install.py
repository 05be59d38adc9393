"""The README and the guides as a new user meets them: a copy of this checkout, `make run
PORT=<a port of their choosing>` in it (which builds a fresh virtualenv with pip), then, as
written: the README's blocks in another terminal with that PORT exported, the operators'
guide's commands and deployment with that virtualenv as the site's, and the host projects
of the host developers' and the portal guides with its python. Nothing is rewritten but
the operators' site's directory (/srv/mysite). Slow (a pip install): SLOW_MODULES."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from .codeblocks import ROOT
from .conftest import answers, free_port, wait_for
from .test_guides import (
    check_operators_commands_output,
    deploy_and_check_the_site,
    operators_site,
    run_host_developers_guide,
    run_operators_commands,
    run_portal_guide,
)
from .test_readme import check_readme_output, run_readme_blocks

# What a new user's terminal does not have: the suite's database, broker, settings, venv.
NOT_IN_A_NEW_TERMINAL = (
    "DATABASE_URL",
    "REDIS_URL",
    "DJANGO_SETTINGS_MODULE",
    "VIRTUAL_ENV",
    "PYTHONPATH",
)


def copy_of_this_checkout(to: Path) -> Path:
    """The files of this checkout as a clone has them (tracked and new, not ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():  # not a file deleted in the work tree
            target = to / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
            target.chmod(source.stat().st_mode)
    return to


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """`make run PORT=…` in a copy of this checkout, on a free port (not 8000)."""
    checkout = copy_of_this_checkout(tmp_path_factory.mktemp("fresh") / "checkout")
    env = {k: v for k, v in os.environ.items() if k not in NOT_IN_A_NEW_TERMINAL}
    env["Q_NAME"] = f"fresh-{uuid.uuid4().hex[:8]}"  # a queue of its own, if Redis were used
    port = free_port()
    assert port != 8000
    base = f"http://127.0.0.1:{port}"
    make = subprocess.Popen(
        ["make", "run", f"PORT={port}"],
        cwd=checkout,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # a terminal of its own: Ctrl-C reaches make and serve
    )
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(make.stdout), daemon=True).start()
    started = time.monotonic()
    try:

        def serving() -> bool:
            assert make.poll() is None, "make run ended:\n" + "".join(lines)
            return answers(f"{base}/admin/login/")

        wait_for(serving, 600, "make run to install and serve")
        print(f"make run: serving after {time.monotonic() - started:.0f} s")
        yield SimpleNamespace(
            dir=checkout,
            venv=checkout / ".venv",
            port=port,
            base=base,
            env=env,
            # For the suite's own look at the demo's database (tokens, the API).
            live=SimpleNamespace(
                base=base,
                port=port,
                env={
                    **env,
                    "DJANGO_SETTINGS_MODULE": "example_project.settings",
                    "DATABASE_URL": f"sqlite:///{checkout / 'example.sqlite3'}",
                },
            ),
        )
    finally:
        os.killpg(make.pid, signal.SIGINT)  # Ctrl-C
        try:
            make.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(make.pid, signal.SIGKILL)
            make.wait(timeout=10)


def test_the_fresh_virtualenv_is_the_checkouts_own(fresh):
    python = fresh.venv / "bin" / "python"
    where = subprocess.run(
        [python, "-c", "import sys, webhooks; print(sys.prefix); print(webhooks.__file__)"],
        cwd=fresh.dir.parent,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert where == [str(fresh.venv), str(fresh.dir / "webhooks" / "__init__.py")]


def test_readme_blocks_as_written_on_the_chosen_port(fresh):
    output = run_readme_blocks(fresh.dir, fresh.env, fresh.port)
    check_readme_output(fresh.live, output)


def test_operators_guide_as_written_in_the_fresh_virtualenv(fresh, tmp_path, receiver):
    """Its commands (the deploy commands among them), then its units on the same site."""
    site = operators_site(tmp_path, fresh.venv, code=fresh.dir)
    printed = run_operators_commands(site)
    check_operators_commands_output(printed)
    deploy_and_check_the_site(site, receiver, deployed=printed)


def test_host_projects_of_the_guides_in_the_fresh_virtualenv(fresh, tmp_path):
    python = dict(python=str(fresh.venv / "bin" / "python"), code=fresh.dir)
    (tmp_path / "host").mkdir()
    run_host_developers_guide(tmp_path / "host", **python)
    (tmp_path / "portal").mkdir()
    run_portal_guide(tmp_path / "portal", **python)
