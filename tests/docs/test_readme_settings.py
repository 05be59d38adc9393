"""The README's settings lines, run as written: an unset key ends in webhooks.E010's message
(what the README promises), not in a KeyError at import."""

from __future__ import annotations

import os
import subprocess
import sys

from cryptography.fernet import Fernet

from .codeblocks import ROOT, code_blocks

README = ROOT / "README.md"


def readme_key_lines() -> str:
    """``import os`` and the WEBHOOKS_ENCRYPTION_KEYS line of the README's settings block."""
    [block] = [
        b
        for b in code_blocks(README)
        if b.language == "python" and "WEBHOOKS_ENCRYPTION_KEYS =" in b.code
    ]
    lines = block.code.splitlines()
    assert "import os" in lines, "the settings block uses os: it must import it"
    [keys] = [line for line in lines if line.startswith("WEBHOOKS_ENCRYPTION_KEYS =")]
    return f"import os\n{keys}\n"


def check_with_readme_settings(tmp_path, **environ) -> subprocess.CompletedProcess:
    (tmp_path / "readme_settings.py").write_text(
        "from example_project.settings import *  # noqa: F403\n" + readme_key_lines()
    )
    env = {k: v for k, v in os.environ.items() if k != "WEBHOOKS_ENCRYPTION_KEYS"}
    env.update(
        PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]),
        DJANGO_SETTINGS_MODULE="readme_settings",
        DATABASE_URL=f"sqlite:///{tmp_path}/site.sqlite3",
        **environ,
    )
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_readme_settings_line_with_no_key_set_fails_with_e010(tmp_path):
    result = check_with_readme_settings(tmp_path)
    assert result.returncode != 0
    assert "webhooks.E010" in result.stderr
    assert "no key is set (is the WEBHOOKS_ENCRYPTION_KEYS environment variable set?)" in (
        result.stderr
    )
    assert "KeyError" not in result.stderr and "Traceback" not in result.stderr


def test_the_readme_settings_line_with_keys_set_passes(tmp_path):
    keys = f"{Fernet.generate_key().decode()},{Fernet.generate_key().decode()}"
    result = check_with_readme_settings(tmp_path, WEBHOOKS_ENCRYPTION_KEYS=keys)
    assert result.returncode == 0, result.stderr
    assert "webhooks.E010" not in result.stderr
