"""Each benchmark still runs: once, at a tiny size, into a temporary directory.

Not a timed test: the figures are in docs/benchmarks.md, produced by ``python -m bench.run
all``. PostgreSQL + Redis is included when the suite runs on them.
"""

import json
import os
import shutil
import subprocess
import sys
import time

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
        timeout=600,
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


def test_request_threads_benchmark_measures_each_thread_count():
    out = subprocess.run(
        [sys.executable, "-m", "bench.request_threads", "--threads", "1,4"]
        + ["--requests", "40", "--rounds", "1"],
        cwd=ROOT,
        check=True,
        timeout=300,
        capture_output=True,
        text=True,
    )
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [row["threads"] for row in rows] == [1, 4]
    assert all(row["cpu_us_per_request"] > 0 and row["requests_per_s"] > 0 for row in rows)


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


def test_observability_benchmark_runs_with_metrics_and_tracing_on(tmp_path):
    result = run("observability", tmp_path)
    for backend in result["backends"].values():
        [off], [on] = backend["runs"]["off"], backend["runs"]["on"]
        for one in (off, on):
            assert one["succeeded"] == 3 * backend["events"] and one["duplicates"] == 0
        assert off["metrics_files"] == 0 and on["metrics_files"] > 0
        assert backend["summary"]["deliveries_per_s"]["on_over_off"] > 0


def test_statements_benchmark_runs_and_every_delivery_succeeds(tmp_path):
    result = run("statements", tmp_path)
    for backend in result["backends"].values():
        happy = backend["happy"]
        assert happy["deliveries"] == happy["attempts_succeeded"] == 30
        assert happy["delivery_states"] == {"succeeded": 30}
        # Every statement is named by what it is for (the docs' table is built from them).
        for case in ("happy", "failing"):
            unnamed = [r for r in backend[case]["by_purpose"] if r["category"] == "other"]
            assert not unnamed, unnamed


def test_portal_benchmark_runs_and_times_every_page_it_finds(tmp_path):
    result = run("portal", tmp_path)
    for backend in result["backends"].values():
        assert backend["attempts_of_the_busy_webhook"] >= 300
        pages = backend["pages"]
        # Found by the crawl from the portal's root, whatever pages are merged.
        assert pages["webhooks"]["url"] == "/settings/integrations/webhooks/"
        for name, page in pages.items():
            assert page["status"] == 200, (name, page)
            assert page["median_ms"] > 0 and page["queries"] > 0, (name, page)


def scaleout_skip_reason() -> str | None:
    if not (os.environ.get("DATABASE_URL", "").startswith("postgres") and BACKENDS != "sqlite"):
        return "the scale-out benchmark runs on PostgreSQL + Redis (set DATABASE_URL, REDIS_URL)"
    from bench import scaleout
    from bench.harness import postgres_available, redis_available

    reason = scaleout.why_not_runnable()
    if reason:
        return f"the scale-out benchmark {reason}"
    admin = os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/postgres"
    if not postgres_available(admin) or not redis_available(os.environ["REDIS_URL"]):
        return "PostgreSQL or Redis not reachable"
    return None


def netns_and_links() -> str:
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    return namespaces + links


def test_scaleout_benchmark_delivers_once_from_three_netns_hosts_and_leaves_nothing(tmp_path):
    reason = scaleout_skip_reason()
    if reason:
        pytest.skip(reason)
    env = {
        **os.environ,
        "BENCH_POSTGRES_URL": os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/postgres",
        "BENCH_REDIS_URL": os.environ["REDIS_URL"],
    }
    subprocess.run(
        [sys.executable, "-m", "bench.run", "scaleout", "--size", "tiny", "--backends",
         "postgres", "--out", str(tmp_path)],
        cwd=ROOT, env=env, check=True, timeout=300, capture_output=True,
    )  # fmt: skip
    result = json.loads((tmp_path / "scaleout-tiny.json").read_text())["backends"]["postgres"]
    assert [stage["hosts"] for stage in result["stages"]] == [1, 2, 3]
    for stage in result["stages"]:
        assert stage["complete"] and stage["lost"] == 0 and stage["duplicates"] == 0, stage
        assert stage["signature_failures"] == 0
        assert sum(h["deliveries"] for h in stage["per_host"].values()) == stage["expected"]
        assert set(stage["per_host"]) <= {f"host_{i}" for i in range(1, stage["hosts"] + 1)}
    assert result["tag"] not in netns_and_links()


def test_scaleout_removes_what_a_killed_run_left(tmp_path):
    """A run SIGKILLed mid-way leaves namespaces, links and processes; the next removes them."""
    from bench import scaleout

    reason = scaleout.why_not_runnable()
    if reason:
        pytest.skip(f"the scale-out benchmark {reason}")
    tag = scaleout.TAG_PREFIX + "dead01"
    ns = f"{tag}-1"
    dead = subprocess.Popen(["true"])
    dead.wait()  # an owner PID that no longer runs
    scaleout.STATE_DIR.mkdir(parents=True, exist_ok=True)
    (scaleout.STATE_DIR / f"{tag}.json").write_text(
        json.dumps({"tag": tag, "owner": [dead.pid, 0], "pids": [], "databases": []})
    )
    subprocess.run(["ip", "netns", "add", ns], check=True)
    subprocess.run(
        ["ip", "link", "add", f"{tag}h1", "type", "veth", "peer", "name", f"{tag}n1", "netns", ns],
        check=True,
    )
    # A process left running in the namespace, as a killed run's qcluster would be.
    sleeper = subprocess.Popen(["ip", "netns", "exec", ns, "sleep", "600"], start_new_session=True)
    try:
        # inside the namespace, as a killed run's are (on a loaded machine `ip netns exec`
        # may take a while to enter it: the clean-up cannot see a process not there yet)
        for _ in range(100):
            if subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout:
                break
            time.sleep(0.1)
        assert tag in scaleout.clean_leftovers(admin_url="")
        assert sleeper.wait(timeout=10) != 0
        assert tag not in netns_and_links()
        assert not (scaleout.STATE_DIR / f"{tag}.json").exists()
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["ip", "link", "del", f"{tag}h1"], capture_output=True)


@pytest.mark.slow
def test_admin_pages_benchmark_runs(tmp_path):
    out = tmp_path / "admin.json"
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}  # its own SQLite file
    subprocess.run(
        [sys.executable, "bench/admin_bench.py", "--rows", "300", "--repeat", "1", "--out", out],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=600,
    )
    pages = json.loads(out.read_text())["sqlite"]
    assert pages["rows"] == 300


def run_module(module: str, tmp_path, *args: str) -> dict:
    """Run ``python -m bench.<module> … --out FILE`` on the suite's backends; its JSON."""
    env = {**os.environ}
    if "postgres" in BACKENDS:
        env["BENCH_POSTGRES_URL"] = os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/postgres"
        env["BENCH_REDIS_URL"] = os.environ["REDIS_URL"]
    out = tmp_path / f"{module}.json"
    subprocess.run(
        [sys.executable, "-m", f"bench.{module}", "--backends", BACKENDS, *args, "--out", out],
        cwd=ROOT, env=env, check=True, timeout=600, capture_output=True,
    )  # fmt: skip
    result = json.loads(out.read_text())["backends"]
    assert set(result) == set(BACKENDS.split(","))
    for backend in result.values():
        assert "skipped" not in backend, backend
    return result


def test_noisy_neighbours_benchmark_runs_the_shared_host_and_the_sustained_setups(tmp_path):
    # "sustained" puts each hostile endpoint on its own port, as "ports" does.
    result = run_module(
        "noisy", tmp_path, "--setups", "shared,sustained", "--events", "2",
        "--rate", "2", "--seconds", "1", "--hostile", "2", "--deadline", "60", "--settle", "0",
    )  # fmt: skip
    for backend in result.values():
        for setup in ("shared", "sustained"):
            one = backend[setup]
            assert one["all_healthy_delivered"] and one["healthy_duplicates"] == 0, one
            assert one["hostile_on_schedule"]["first_attempts"]["n"] > 0, one
            assert one["cpu"]["qcluster_s"] > 0, one
        assert len(backend["shared"]["hostile"]) == 6
        assert backend["sustained"]["hostile"] == ["nul_error", "binary"]


def test_retry_timing_benchmark_runs_and_stops_the_cluster(tmp_path):
    # The sweeper process of the other benchmarks: retries on time even before issue 19.
    result = run_module(
        "retry_timing", tmp_path, "--events", "3", "--schedule", "0.5",
        "--deadline", "60", "--sweeper-process",
    )  # fmt: skip
    for backend in result.values():
        assert backend["settled"] and backend["delivery_states"] == {"failed": 3}, backend
        assert backend["retry_lateness"]["n"] == 3
        assert backend["qcluster_stop_seconds"] is not None


def test_rate_limit_benchmark_holds_the_limit_across_hosts_with_nothing_lost(tmp_path):
    """A few seconds of ``bench.ratelimit``: 3 worker processes on 2 hosts (one, when this
    machine has no network namespaces), a limited webhook beside an unlimited one."""
    if not (os.environ.get("DATABASE_URL", "").startswith("postgres") and BACKENDS != "sqlite"):
        pytest.skip("the rate-limit benchmark runs on PostgreSQL + Redis")
    env = {
        **os.environ,
        "BENCH_POSTGRES_URL": os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/postgres",
        "BENCH_REDIS_URL": os.environ["REDIS_URL"],
    }
    out = tmp_path / "ratelimit.json"
    subprocess.run(
        [sys.executable, "-m", "bench.ratelimit", "--seconds", "3", "--limit", "5", "--rate",
         "10", "--out", str(out)],
        cwd=ROOT, env=env, check=True, timeout=300, capture_output=True,
    )  # fmt: skip
    result = json.loads(out.read_text())
    assert result["complete"] and result["lost"] == 0 and result["duplicates"] == 0, result
    assert result["received_limited"] == result["received_unlimited"] == result["events"]
    assert result["postponements"] > 0  # the load was above the limit: some waited
    assert result["database"]["failed_attempts"] == 0  # and waiting was never a failure
    assert result["database"]["attempts"] == result["events"]
    # Over so short a window the first second's burst weighs: the 60 s figure is in the docs.
    assert result["limited_rate_overall_per_s"] <= 5 * 1.05
    if result["hosts"] == 2:
        assert set(result["per_host"]) == {"host_1", "host_2"}


@pytest.mark.skipif(
    "postgres" not in BACKENDS, reason="the scale ladder runs on PostgreSQL + Redis"
)
def test_scale_ladder_runs_on_an_empty_rung_and_drops_it(tmp_path):
    out = tmp_path / "ladder.json"
    env = {
        **os.environ,
        "BENCH_POSTGRES_URL": os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/postgres",
        "BENCH_REDIS_URL": os.environ["REDIS_URL"],
    }
    subprocess.run(
        [sys.executable, "-m", "bench.scale_ladder", "--size", "tiny",
         "--only", "fan_out,host_save,sweeper", "--out", str(out)],
        cwd=ROOT, env=env, check=True, timeout=300, capture_output=True,
    )  # fmt: skip
    [(name, rung)] = json.loads(out.read_text())["rungs"].items()
    [fan_out] = rung["fan_out"]
    assert fan_out["10"]["median_ms"] > 0 and fan_out["10"]["statements"] > 0
    assert rung["host_save"][0]["ratio"] > 0
    assert rung["sweeper"][0]["plans"], rung["sweeper"]
    import psycopg

    with psycopg.connect(env["BENCH_POSTGRES_URL"]) as conn:
        left = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchall()
    assert not left, f"{name} was not dropped"


@pytest.mark.parametrize("tasks", ["--tasks", "--no-tasks"])
def test_backlog_benchmark_drains_every_event_once(tasks, tmp_path):
    """``bench.backlog`` at 200 events: filled while no worker runs, drained by a real
    cluster with the fan-out tasks in the broker, or lost with it (the sweeper finds the
    events); each event arrives once and nothing is left."""
    if not (os.environ.get("DATABASE_URL", "").startswith("postgres") and BACKENDS != "sqlite"):
        pytest.skip("the backlog benchmark runs on PostgreSQL + Redis")
    env = {
        **os.environ,
        "BENCH_POSTGRES_URL": os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/postgres",
        "BENCH_REDIS_URL": os.environ["REDIS_URL"],
    }
    subprocess.run(
        [sys.executable, "-m", "bench.backlog", "--events", "200", tasks, "--sample", "1",
         "--out", str(tmp_path)],
        cwd=ROOT, env=env, check=True, timeout=300, capture_output=True,
    )  # fmt: skip
    [path] = tmp_path.glob("backlog-200*.json")
    result = json.loads(path.read_text())
    assert result["lost"] == 0 and result["duplicates"] == 0, result
    assert result["distinct_webhook_ids"] == result["received_2xx"] == 200
    database = result["database"]
    assert database["deliveries"] == {"succeeded": 200}, database
    assert database["events_not_fanned_out"] == database["events_with_two_deliveries"] == 0
    assert database["attempts"] == 200 and database["leased"] == 0
    assert (result["fill"]["tasks"] > 0) == (tasks == "--tasks")
    assert len(result["worker_rss"]) == 4
    for when in ("start", "halfway", "end"):
        assert result["plans"][when]["paths"], when


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="bench.delete_webhook copies a PostgreSQL database",
)
def test_delete_webhook_benchmark_deletes_the_busiest_webhook_of_a_copy(tmp_path):
    import psycopg

    server = os.environ["DATABASE_URL"].rsplit("/", 1)[0]
    name = os.environ["DATABASE_URL"].rsplit("/", 1)[1] + "_delete_bench"
    env = {**os.environ, "BENCH_POSTGRES_URL": f"{server}/postgres"}

    def admin(sql):
        with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
            cursor = conn.execute(sql)
            return cursor.fetchall() if sql.startswith("SELECT") else None

    admin(f"DROP DATABASE IF EXISTS {name}")
    admin(f"CREATE DATABASE {name}")
    try:
        generate_small_data_set(env, f"{server}/{name}")
        out = tmp_path / "delete.json"
        subprocess.run(
            [sys.executable, "-m", "bench.delete_webhook", "--database", name, "--out", str(out)],
            cwd=ROOT, env=env, check=True, timeout=300, capture_output=True,
        )  # fmt: skip
    finally:
        admin(f"DROP DATABASE IF EXISTS {name}")
    result = json.loads(out.read_text())[name]
    assert result["deliveries"] > 0 and result["attempts"] >= result["deliveries"]
    # the busiest webhook and the quietest go in the same statements; the log after them
    steps = result["steps"]
    assert steps["delete"]["queries"] == steps["delete, the quietest webhook"]["queries"] > 0
    assert result["deliveries"] > result["quietest_webhook_deliveries"]
    assert steps["the log, by the task"]["queries"] > 0
    left = admin(f"SELECT 1 FROM pg_database WHERE datname = '{name}_delete'")
    assert not left, "the copy was not dropped"


def test_backlog_benchmark_on_a_data_set_counts_the_backlog_alone(tmp_path):
    """``bench.backlog --database``: drained beside a generated data set, the counts are
    the backlog's (the set's own deliveries are not counted as lost, doubled or left), and
    the set's deliveries waiting for a retry are put off, not sent to its receivers."""
    if not (os.environ.get("DATABASE_URL", "").startswith("postgres") and BACKENDS != "sqlite"):
        pytest.skip("the backlog benchmark runs on PostgreSQL + Redis")
    import psycopg

    server = os.environ["DATABASE_URL"].rsplit("/", 1)[0]
    name = os.environ["DATABASE_URL"].rsplit("/", 1)[1] + "_backlog_set"
    env = {
        **os.environ,
        "BENCH_POSTGRES_URL": f"{server}/postgres",
        "BENCH_REDIS_URL": os.environ["REDIS_URL"],
    }

    def admin(sql):
        with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
            conn.execute(sql)

    admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin(f"CREATE DATABASE {name}")
    try:
        generate_small_data_set(env, f"{server}/{name}")

        def the_sets_attempts() -> int:
            with psycopg.connect(f"{server}/{name}") as conn:
                return conn.execute(
                    "SELECT count(*) FROM webhooks_deliveryattempt "
                    "WHERE request_url LIKE 'https://hooks.example.com%%'"
                ).fetchone()[0]

        before = the_sets_attempts()
        # The set's deliveries waiting for a retry, due now: the drain must not send them.
        with psycopg.connect(f"{server}/{name}") as conn:
            conn.execute(
                "UPDATE webhooks_delivery SET status = 'pending', next_attempt_at = now() "
                "WHERE id IN (SELECT d.id FROM webhooks_delivery d JOIN webhooks_subscription s "
                "ON s.id = d.subscription_id WHERE s.is_active LIMIT 5)"
            )
        subprocess.run(
            [sys.executable, "-m", "bench.backlog", "--events", "200", "--sample", "1",
             "--database", name, "--out", str(tmp_path)],
            cwd=ROOT, env=env, check=True, timeout=300, capture_output=True,
        )  # fmt: skip
        sent_to_the_set = the_sets_attempts() - before
    finally:
        admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    [path] = tmp_path.glob(f"backlog-200-on-{name}.json")
    result = json.loads(path.read_text())
    assert result["lost"] == 0 and result["duplicates"] == 0, result
    assert result["database"]["deliveries"] == {"succeeded": 200}, result["database"]
    assert result["database"]["attempts"] == 200 and result["database"]["leased"] == 0
    assert result["prepared"]["postponed_pending"] >= 5
    assert sent_to_the_set == 0


def generate_small_data_set(env: dict, database_url: str) -> None:
    """``bench.datagen`` at its smallest, into ``database_url`` (created and empty)."""
    made = subprocess.run(
        [sys.executable, "-m", "bench.datagen", "--attempts", "600", "--webhooks", "40",
         "--tenants", "4"],
        cwd=ROOT, env={**env, "DATABASE_URL": database_url},
        timeout=300, capture_output=True, text=True,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_instructions_benchmark_counts_each_delivery_under_callgrind():
    """Two runs under callgrind (valgrind: a minute or two), and the Python calls."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.instructions", "--backends", "sqlite"]
        + ["--batches", "1,2", "--calls"],
        cwd=ROOT,
        check=True,
        timeout=1200,
        capture_output=True,
        text=True,
    )
    result = json.loads(out.stdout)
    few, many = result["instructions"]
    assert 0 < few < many and result["instructions_per_delivery"] > 0
    assert result["calls_per_delivery"] > 0 and result["posts_per_delivery"] == 1
