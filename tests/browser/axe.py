"""axe-core (the npm package, pinned in tests/browser/package-lock.json) injected into a
Playwright page: the accessibility rules the portal's pages must pass.

Installed by ``npm ci --prefix tests/browser`` (.ci/run; ``make test-all`` when npm is
there). A test calling :func:`axe_violations` skips, saying so, when it is not installed
(and fails under CI, which must have installed it).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

AXE_JS = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"
INSTALL = "npm ci --prefix tests/browser"
#: What fails a page: serious and critical violations (moderate/minor are reported by axe
#: but left to judgement).
FAILING_IMPACTS = ("serious", "critical")


def require_axe() -> None:
    if AXE_JS.exists():
        return
    reason = f"axe-core is not installed ({AXE_JS} missing): run `{INSTALL}`"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; .ci/run installs it, so CI must not skip these checks")
    pytest.skip(reason)


def axe_violations(page, impacts=FAILING_IMPACTS) -> list[dict]:
    """Run axe-core on ``page`` as it is now; its violations of the given impacts.

    Each is axe's own result (``id``, ``impact``, ``help``, ``helpUrl``, ``nodes`` with
    their ``target`` selectors); :func:`describe` makes a list of them readable.
    """
    require_axe()
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=AXE_JS.read_text())
    results = page.evaluate(
        """async () => {
            const r = await axe.run(document, {resultTypes: ['violations']});
            return r.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
                nodes: v.nodes.map(n => ({target: n.target, summary: n.failureSummary})),
            }));
        }"""
    )
    return [v for v in results if v["impact"] in impacts]


def describe(violations: list[dict], limit: int = 5) -> str:
    """``rule (impact): help`` and the selectors of the first ``limit`` elements, one a line."""
    lines = []
    for v in violations:
        lines.append(f"  {v['id']} ({v['impact']}): {v['help']}")
        for node in v["nodes"][:limit]:
            lines.append(f"      at {' '.join(map(str, node['target']))}")
        if len(v["nodes"]) > limit:
            lines.append(f"      … and {len(v['nodes']) - limit} more")
    return "\n".join(lines)
