"""The Wagtail recipe of docs/host-developers.md, run as written on a real Wagtail site:
its ``home/`` files and its tests go into a copy of ``guide_project/``, whose tests run."""

from tests.wagtail_site import skip_unless_wagtail_site

skip_unless_wagtail_site()

import os  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from tests.docs.codeblocks import ROOT, WAGTAIL_RECIPE, files  # noqa: E402


def test_the_wagtail_recipe_runs(tmp_path):
    project = tmp_path / "wagtail_guide"
    shutil.copytree(Path(__file__).parent / "guide_project", project)
    recipe = {
        name: code
        for name, code in files(ROOT / "docs" / "host-developers.md").items()
        if name.startswith(WAGTAIL_RECIPE)
    }
    assert set(recipe) == {"home/webhook_events.py", "test_home_webhooks.py"}
    for name, code in recipe.items():
        (project / name).write_text(code)
    (project / "pytest.ini").write_text(
        "[pytest]\nDJANGO_SETTINGS_MODULE = docs_settings\naddopts = -p no:cacheprovider\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(project), str(ROOT)])}
    env["DATABASE_URL"] = f"sqlite:///{project / 'guide.sqlite3'}"
    env["WAGTAIL_MEDIA_ROOT"] = str(tmp_path / "media")
    env.pop("REDIS_URL", None)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    tests = recipe["test_home_webhooks.py"].count("\ndef test_")
    assert f"{tests} passed" in done.stdout, done.stdout
