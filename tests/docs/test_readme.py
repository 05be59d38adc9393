"""The README's shell examples run as written against a live `serve` (`make run`'s state)."""

import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

from .codeblocks import ROOT, json_documents, runnable
from .conftest import token_for, wait_for

README = ROOT / "README.md"
SEPARATOR = "----- next README block -----"


def readme_checkout(tmp_path: Path, venv: Path) -> Path:
    """What the README's blocks expect of their directory, the root of a checkout after
    `make run`: ``manage.py`` and ``.venv`` (here this checkout's, and ``venv``)."""
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / "manage.py").symlink_to(ROOT / "manage.py")  # Python imports from ROOT
    (checkout / ".venv").symlink_to(venv)
    return checkout


def run_readme_blocks(checkout: Path, env: dict, port: int) -> str:
    """The README's ``<!-- run -->`` blocks as written, in one shell, block after block as a
    reader types them, in a terminal where ``PORT`` is the port they gave `make run`."""
    blocks = runnable(README, "sh")
    script = "\n".join(f'echo "{SEPARATOR}"\n{block.code}' for block in blocks)
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=checkout,
        env={**env, "PORT": str(port)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"a README block failed:\n{result.stdout}\n{result.stderr}"
    assert result.stdout.count(SEPARATOR) == len(blocks)
    return result.stdout


def api_get(live, path, token):
    request = urllib.request.Request(
        f"{live.base}/api/webhooks/{path}", headers={"Authorization": f"Token {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def test_readme_shell_examples_run_as_written(live_example, tmp_path):
    checkout = readme_checkout(tmp_path, Path(sys.executable).parent.parent)
    output = run_readme_blocks(checkout, live_example.env, live_example.port)
    check_readme_output(live_example, output)


def check_readme_output(live_example, output: str) -> None:
    """What the README's blocks say they print, and do in the background."""
    documents = json_documents(output)

    assert "events in all" in output  # simulate_activity ran
    event_type = next(d for d in documents if d.get("name") == "attempt.submitted")
    assert event_type["category"] == "Attempts" and event_type["example_payload"]
    webhook = next(d for d in documents if "secret" in d)
    assert webhook["secret"].startswith("whsec_")
    assert webhook["url"] == f"{live_example.base}/demo-receiver/alice/"
    assert webhook["event_types"] == ["attempt.submitted"]
    assert webhook["scope"] == "org:1"  # Northwind Academy, alice's organisation
    assert "\n404\n" in output  # bob, of Contoso, cannot see it
    # The ping answered 202 at once; its Location is the webhook.test delivery.
    assert re.search(r"^HTTP/1\.[01] 202 Accepted", output, re.MULTILINE), output
    ping = next(d for d in documents if d.get("event_type") == "webhook.test")
    assert ping["subscription"] == webhook["id"]
    deliveries, events = [d for d in documents if "results" in d][-2:]
    assert deliveries["results"]
    for delivery in deliveries["results"]:
        assert delivery["status"] == "succeeded"
        assert delivery["event_type"] in ("attempt.submitted", "webhook.test")  # + the ping
        assert delivery["subscription"] == webhook["id"]
    assert events["results"]
    assert {e["type"] for e in events["results"]} == {"attempt.submitted"}
    # The retention block: what would go is counted, then purged (nothing is old enough).
    assert "Dry run: would delete 0 deliveries, 0 attempts and 0 events." in output
    assert "Deleted 0 deliveries, 0 attempts and 0 events" in output

    # What the README says happens in the background: the webhook's deliveries succeed and
    # arrive, signature-checked, in the inbox it points at.
    token = token_for(live_example.env, "alice")
    query = f"deliveries/?subscription={webhook['id']}&status=succeeded"
    wait_for(lambda: api_get(live_example, query, token)["results"], 90, "a delivery")
    ping_done = f"deliveries/{ping['id']}/"
    wait_for(lambda: api_get(live_example, ping_done, token)["status"] == "succeeded", 90, "ping")
    assert api_get(live_example, ping_done, token)["attempts"][-1]["response_status_code"] == 204
    with urllib.request.urlopen(f"{live_example.base}/demo-receiver/alice/") as response:
        inbox = response.read().decode()
    assert 'class="ok"' in inbox and 'class="bad"' not in inbox


def test_every_shell_example_of_the_readme_is_run():
    """Only the two `make` commands (tested through `serve`) may go without the marker."""
    from .codeblocks import code_blocks

    unmarked = [b for b in code_blocks(README) if b.language == "sh" and not b.run]
    assert [b.code.split()[:2] for b in unmarked] == [["make", "run"]]


def test_the_readme_documents_the_example_projects_api_settings():
    """The authentication the README documents is the one its examples run against."""
    from example_project import settings

    from .codeblocks import code_blocks

    block = next(b for b in code_blocks(README) if b.code.startswith("REST_FRAMEWORK = {"))
    documented = {}
    exec(block.code, documented)
    assert documented["REST_FRAMEWORK"] == settings.REST_FRAMEWORK
    assert "rest_framework.authtoken" in settings.INSTALLED_APPS


def test_the_readme_urls_block_runs_as_written():
    """The block imports what it uses (it once lacked ``include`` and ``path``) and mounts the
    API and its schema where the README says."""
    from types import ModuleType

    from django.urls import resolve, reverse

    from .codeblocks import code_blocks

    [block] = [b for b in code_blocks(README) if b.code.startswith("# urls.py\n")]
    urls = ModuleType("readme_urls")
    exec(block.code, urls.__dict__)
    assert resolve("/api/webhooks/subscriptions/", urlconf=urls).url_name
    assert reverse("schema", urlconf=urls) == "/api/schema/"
    assert resolve("/api/docs/", urlconf=urls).func.view_class.__name__ == (
        "SpectacularSwaggerView"
    )
