"""The purge benchmark still runs: once, at a tiny size, on the database the suite runs on.

Not a timed test: the figures for 1,000,000 attempts are in docs/benchmarks.md.
"""

import json
import os
import subprocess
import sys

from bench.harness import ROOT


def test_purge_benchmark_deletes_what_is_past_retention_beside_live_traffic(tmp_path):
    out = tmp_path / "purge.json"
    subprocess.run(
        [sys.executable, "bench/purge.py", "--attempts", "2000", "--out", str(out)],
        cwd=ROOT,
        env={**os.environ},
        check=True,
        timeout=300,
        capture_output=True,
    )
    [result] = json.loads(out.read_text()).values()
    # 2,000 attempts, 4 per delivery: 4/5 of the deliveries are past retention.
    assert result["attempts_seeded"] == 2000
    assert result["deleted"]["attempts"] == 1600 and result["deleted"]["deliveries"] == 400
    assert result["deleted"]["events"] == 10  # the failed ones' events, 100 days old
    assert result["transactions"] >= 2 and result["live_writes"] > 0
