"""The example platform sends its e-mails (a webhook switched off, failing) somewhere a
person running `make run` can read them, not to an SMTP server that is not there."""

from __future__ import annotations

import subprocess
import sys

from tests.docs.codeblocks import ROOT
from tests.test_serve import example_env


def test_the_demo_prints_its_mails_to_the_console_instead_of_failing(tmp_path):
    env = example_env(tmp_path)
    env.pop("EMAIL_BACKEND", None)
    sent = subprocess.run(
        [sys.executable, "manage.py", "sendtestemail", "owner@example.com"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert sent.returncode == 0, sent.stderr[-2000:]
    assert "To: owner@example.com" in sent.stdout
