"""Each benchmark still runs: once, at a tiny size, into a temporary directory.

Not a timed test: the figures are in docs/benchmarks.md, produced by ``python -m bench.run
all``. PostgreSQL + Redis is included when the suite runs on them.
"""

import json
import os
import subprocess
import sys

import pytest

from bench.harness import ROOT

BACKENDS = "sqlite"
if os.environ.get("DATABASE_URL", "").startswith("postgres") and os.environ.get("REDIS_URL"):
    BACKENDS = "sqlite,postgres"


def run(name, tmp_path) -> dict:
    env = {**os.environ}
    if "postgres" in BACKENDS:
        # The benchmarks create (and drop) databases of their own on the same server.
        env["BENCH_POSTGRES_URL"] = os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/postgres"
        env["BENCH_REDIS_URL"] = os.environ["REDIS_URL"]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.run",
            name,
            "--size",
            "tiny",
            "--backends",
            BACKENDS,
            "--out",
            str(tmp_path),
        ],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=240,
        capture_output=True,
    )
    result = json.loads((tmp_path / f"{name}-tiny.json").read_text())
    assert set(result["backends"]) == set(BACKENDS.split(","))
    for backend in result["backends"].values():
        assert "skipped" not in backend, backend
    return result


def test_overhead_benchmark_runs_and_counts_one_extra_insert(tmp_path):
    result = run("overhead", tmp_path)
    for backend in result["backends"].values():
        for row in backend["queries"]:
            assert row["inserts_bound"] == ["testapp_article", "webhooks_event"], row
            assert row["extra_in_transaction"] == 1, row
            # Nothing after the commit that the host waits for, on either broker.
            assert row["bound"]["after_commit_host"] == [], row
        assert backend["ratio"] > 0


def test_throughput_benchmark_runs(tmp_path):
    result = run("throughput", tmp_path)
    assert result["plain_requests_loop"]["requests_per_s"] > 0
    for backend in result["backends"].values():
        assert backend["succeeded"] == backend["deliveries"] == 30
        assert backend["ratio_to_plain_loop"] > 0


def test_slow_receiver_benchmark_runs(tmp_path):
    result = run("slow", tmp_path)
    for backend in result["backends"].values():
        [one] = backend["runs"]
        assert one["receiver_delay_ms"] == 200 and one["succeeded"] == one["deliveries"]


@pytest.mark.parametrize("name", ["latency"])
def test_latency_benchmark_runs(name, tmp_path):
    result = run(name, tmp_path)
    for backend in result["backends"].values():
        assert backend["received"] == backend["events"]
        assert 0 < backend["p50_ms"] <= backend["p99_ms"]
