"""Scale-out: 1, then 2, then 3 ``qcluster`` hosts, each in a network namespace of its own,
on one PostgreSQL + Redis, delivering a fixed load to one receiver.

    python -m bench.run scaleout [--size tiny]              # needs root (ip netns)
    python -m bench.scaleout probe --pg URL --redis URL     # round trips (used by the run)

The network: a bridge ``<tag>br`` in the root namespace holding ``10.R.S.1/24`` (a /24 no
address or route of this machine uses), and per host a namespace ``<tag>-<i>`` joined to
the bridge by a veth pair, its end holding ``10.R.S.<10+i>``. PostgreSQL and Redis listen on
127.0.0.1 only, which a namespace cannot reach (its 127.0.0.1 is its own loopback), so a
``socat`` forwarder per server listens on ``10.R.S.1`` and relays to them; what that relay
costs is measured (round trips through it vs. direct, and its CPU seconds). The receiver
listens on ``10.R.S.1`` and logs each request's sender address, which names the host.

Everything made here (namespaces, links, forwarders, processes, the database) is recorded in
``$TMPDIR/whb-scaleout/<tag>.json`` before it is made and removed when the run ends,
whatever happened; a later run removes what a killed run left (its owner PID is gone).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bench.harness import Backend, Processes, host, read_log, wait_until

TAG_PREFIX = "whb"  # every namespace, link and state file of this benchmark starts so
STATE_DIR = Path(tempfile.gettempdir()) / "whb-scaleout"
LOGS = Path(tempfile.gettempdir()) / "whb-scaleout-logs"  # of failed runs only
CLK_TCK = os.sysconf("SC_CLK_TCK")


# Preconditions -----------------------------------------------------------------------------


def why_not_runnable() -> str | None:
    """Why this machine cannot run the benchmark, or None."""
    if os.geteuid() != 0:
        return "needs root (ip netns add, veth, a bridge)"
    if not shutil.which("ip") or not shutil.which("socat"):
        return "needs iproute2 (ip) and socat"
    probe = f"{TAG_PREFIX}probe{os.getpid()}"
    try:
        _ip("netns", "add", probe)
        _ip("netns", "del", probe)
    except RuntimeError as exc:
        return f"ip netns unavailable: {exc}"
    return None


def _ip(*args: str, check: bool = True) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and done.returncode:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


# /proc accounting --------------------------------------------------------------------------


def proc_stat(pid: int) -> dict | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = raw[raw.index("(") + 1 : raw.rindex(")")]
    f = raw[raw.rindex(")") + 2 :].split()  # f[0] is field 3 (state)
    return {
        "pid": pid,
        "comm": comm,
        "ppid": int(f[1]),
        "pgid": int(f[2]),
        "own": (int(f[11]) + int(f[12])) / CLK_TCK,  # utime + stime
        "reaped": (int(f[13]) + int(f[14])) / CLK_TCK,  # cutime + cstime: children waited for
        "start": int(f[19]),
        "zombie": f[0] == "Z",  # ended, not yet reaped by its parent
    }


def all_procs() -> list[dict]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (st := proc_stat(int(entry))):
            out.append(st)
    return out


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of every core since boot, from /proc/stat."""
    f = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = f[3] + f[4]  # idle + iowait
    return (sum(f[:8]) - idle) / CLK_TCK, sum(f[:8]) / CLK_TCK


class CpuMeter:
    """CPU seconds per component, as a snapshot of /proc; ``delta`` subtracts two."""

    def __init__(self, database: str, groups: dict[str, int]) -> None:
        self.database = database
        self.groups = groups  # name -> process-group leader (cluster, receiver, forwarder)

    def snapshot(self) -> dict:
        procs = all_procs()
        by_pid = {p["pid"]: p for p in procs}
        snap: dict[str, float] = {}
        # PostgreSQL: the postmaster (with the backends it reaped) and its live children.
        pg = [p for p in procs if p["comm"] == "postgres"]
        roots = [p for p in pg if by_pid.get(p["ppid"], {}).get("comm") != "postgres"]
        snap["postgresql_server"] = sum(p["own"] for p in pg) + sum(p["reaped"] for p in roots)
        for p in pg:  # backends of this run's database: their process title names it
            if f" {self.database} " in cmdline(p["pid"]):
                snap[f"pg_backend:{p['pid']}:{p['start']}"] = p["own"]
        snap["redis_server"] = sum(p["own"] for p in procs if p["comm"] == "redis-server")
        for name, leader in self.groups.items():
            members = [p for p in procs if p["pgid"] == leader]
            snap[name] = sum(p["own"] + p["reaped"] for p in members)
        snap["machine_busy"], snap["machine_total"] = machine_busy()
        return snap

    @staticmethod
    def delta(before: dict, after: dict) -> dict:
        out = {}
        backends = 0.0
        for key, value in after.items():
            if key.startswith("pg_backend:"):
                backends += value - before.get(key, 0.0)
            else:
                out[key] = round(value - before.get(key, 0.0), 3)
        out["postgresql_this_database"] = round(backends, 3)
        return out


# The network -------------------------------------------------------------------------------


def pick_subnet() -> ipaddress.IPv4Network:
    """A 10.R.S.0/24 that no address or route of the root namespace overlaps."""
    used = []
    for line in _ip("-o", "addr").splitlines() + _ip("route", "show", "table", "all").splitlines():
        for token in line.split():
            try:
                used.append(ipaddress.ip_network(token, strict=False))
            except ValueError:
                continue
    rng = random.Random()
    for _ in range(200):
        net = ipaddress.ip_network(f"10.{rng.randrange(1, 255)}.{rng.randrange(0, 256)}.0/24")
        if not any(net.overlaps(u) for u in used if u.version == 4 and u.prefixlen > 0):
            return net
    raise RuntimeError("no free 10.x.y.0/24")


def _alive(pid: int, start: int) -> bool:
    st = proc_stat(pid)
    return st is not None and st["start"] == start and not st["zombie"]


class State:
    """What a run made, written down before it is made, so that a run killed with SIGKILL is
    cleaned up by the next one."""

    def __init__(self, tag: str) -> None:
        self.path = STATE_DIR / f"{tag}.json"
        me = proc_stat(os.getpid())
        self.data = {"tag": tag, "owner": [os.getpid(), me["start"]], "pids": [], "dirs": []}
        self.data |= {"databases": [], "redis_url": None}

    def save(self) -> None:
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data))
        tmp.replace(self.path)

    def add(self, key: str, value) -> None:
        self.data[key].append(value)
        self.save()

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def _kill_group(pid: int, start: int) -> None:
    """SIGTERM the process group led by ``pid`` (if that is still the process we started),
    SIGKILL it after 5 s."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not _alive(pid, start):
            return
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        wait_until(lambda: not _alive(pid, start), 5, 0.1)


def remove_tag(
    tag: str, *, admin_url: str | None = None, databases=(), pids=(), dirs=(), redis_url=None
) -> None:
    """Remove everything of one run: processes (by PID + start time), whatever still runs in
    its namespaces, the namespaces, its links, its databases."""
    for pid, start in pids:
        _kill_group(pid, start)
    for ns in _ip("netns", "list").split("\n"):
        name = ns.split(" ")[0]
        if name.startswith(f"{tag}-"):
            for pid in map(int, _ip("netns", "pids", name, check=False).split()):
                st = proc_stat(pid)
                if st and (leader := proc_stat(st["pgid"])):
                    _kill_group(leader["pid"], leader["start"])
                try:
                    os.kill(pid, 9)
                except ProcessLookupError:
                    pass
            _ip("netns", "del", name, check=False)
    for line in _ip("-o", "link").splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        if name.startswith(tag):
            _ip("link", "del", name, check=False)
    for path in dirs:
        shutil.rmtree(path, ignore_errors=True)
    for db in databases:
        if admin_url:
            b = Backend("postgres", admin_url=admin_url, name=db)
            b.redis_url = redis_url or b.redis_url
            b.drop()  # the database, and its keys in Redis


def clean_leftovers(admin_url: str) -> list[str]:
    """Remove what earlier runs left when they were killed (their owner process is gone)."""
    removed = []
    live_tags = set()
    if STATE_DIR.exists():
        for path in STATE_DIR.glob("*.json"):
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):
                path.unlink(missing_ok=True)
                continue
            if _alive(*data["owner"]):
                live_tags.add(data["tag"])
                continue
            remove_tag(
                data["tag"],
                admin_url=admin_url,
                databases=data["databases"],
                dirs=data.get("dirs", []),
                redis_url=data.get("redis_url"),
                pids=[tuple(p) for p in data["pids"]],
            )
            path.unlink(missing_ok=True)
            removed.append(data["tag"])
    # Namespaces or links of this benchmark with no live owner (e.g. the state dir was wiped).
    names = [n.split(" ")[0] for n in _ip("netns", "list").splitlines()]
    names += [line.split(":")[1].strip().split("@")[0] for line in _ip("-o", "link").splitlines()]
    for name in names:
        probe = name.removeprefix(f"{TAG_PREFIX}probe")
        if probe != name and probe.isdigit() and not Path(f"/proc/{probe}").exists():
            _ip("netns", "del", name, check=False)  # why_not_runnable's, its process killed
            continue
        tag = name[: len(TAG_PREFIX) + 6]
        if (
            name.startswith(TAG_PREFIX)
            and len(tag) == len(TAG_PREFIX) + 6
            and all(c in "0123456789abcdef" for c in tag[len(TAG_PREFIX) :])
            and tag not in live_tags
            and tag not in removed
        ):
            remove_tag(tag)
            removed.append(tag)
    return removed


class Network:
    """The bridge, one namespace per host, and the forwarders to PostgreSQL and Redis."""

    def __init__(self, hosts: int, processes: Processes, state: State) -> None:
        self.tag = state.data["tag"]
        self.hosts = hosts
        self.processes = processes
        self.state = state
        self.subnet = pick_subnet()
        self.gateway = str(self.subnet[1])
        self.forwarders: dict[str, object] = {}

    def namespace(self, i: int) -> str:
        return f"{self.tag}-{i}"

    def address(self, i: int) -> str:
        return str(self.subnet[10 + i])

    def up(self) -> None:
        br = f"{self.tag}br"
        _ip("link", "add", br, "type", "bridge")
        _ip("addr", "add", f"{self.gateway}/24", "dev", br)
        _ip("link", "set", br, "up")
        for i in range(1, self.hosts + 1):
            ns, outer, inner = self.namespace(i), f"{self.tag}h{i}", f"{self.tag}n{i}"
            _ip("netns", "add", ns)
            _ip("link", "add", outer, "type", "veth", "peer", "name", inner, "netns", ns)
            _ip("link", "set", outer, "master", br, "up")
            _ip("-n", ns, "addr", "add", f"{self.address(i)}/24", "dev", inner)
            _ip("-n", ns, "link", "set", inner, "up")
            _ip("-n", ns, "link", "set", "lo", "up")

    def forward(self, name: str, target_host: str, target_port: int) -> int:
        """A socat relay from ``gateway:target_port`` to the real server; returns its port."""
        port = target_port
        cmd = [
            "socat",
            f"TCP-LISTEN:{port},bind={self.gateway},fork,reuseaddr,nodelay,backlog=256",
            f"TCP:{target_host}:{target_port},nodelay",
        ]
        proc = self.start(f"forward-{name}", cmd, dict(os.environ))
        if not wait_until(lambda: _connectable(self.gateway, port), 10, 0.05):
            raise RuntimeError(f"forwarder {name} did not start")
        self.forwarders[name] = proc
        return port

    def start(self, name: str, cmd: list[str], env: dict, **kw):
        proc = self.processes.start(name, cmd, env, **kw)
        self.state.add("pids", [proc.pid, proc_stat(proc.pid)["start"]])
        return proc

    def in_namespace(self, i: int, cmd: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.namespace(i), *cmd]


def _connectable(addr: str, port: int) -> bool:
    try:
        socket.create_connection((addr, port), timeout=0.5).close()
    except OSError:
        return False
    return True


def _via(url: str, addr: str, port: int) -> str:
    parts = urlsplit(url)
    auth = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return urlunsplit(parts._replace(netloc=f"{auth}{addr}:{port}"))


# Round trips through the forwarder ----------------------------------------------------------


def probe(pg_url: str, redis_url: str, n: int) -> dict:
    """Mean µs of ``SELECT 1`` and of a Redis PING over one connection each."""
    import psycopg
    import redis

    with psycopg.connect(pg_url, autocommit=True) as conn:
        for _ in range(50):
            conn.execute("SELECT 1").fetchone()
        t0 = time.perf_counter()
        for _ in range(n):
            conn.execute("SELECT 1").fetchone()
        pg = (time.perf_counter() - t0) / n * 1e6
    r = redis.from_url(redis_url)
    for _ in range(50):
        r.ping()
    t0 = time.perf_counter()
    for _ in range(n):
        r.ping()
    rd = (time.perf_counter() - t0) / n * 1e6
    return {"postgresql_select_1_us": round(pg, 1), "redis_ping_us": round(rd, 1)}


def _probe_cmd(pg_url: str, redis_url: str, n: int) -> list[str]:
    return [sys.executable, "-m", "bench.scaleout", "probe", "--pg", pg_url, "--redis", redis_url,
            "--n", str(n)]  # fmt: skip


def _run_json(cmd: list[str]) -> dict:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=_root())
    if done.returncode:
        raise RuntimeError(f"{cmd}: {done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _root() -> Path:
    return Path(__file__).resolve().parent.parent


# The run -----------------------------------------------------------------------------------


def run(
    *,
    events: int,
    subscriptions: int = 3,
    hosts: int = 3,
    workers: int = 2,
    webhooks: dict | None = None,
    timeout: float = 300,
    probe_n: int = 2000,
) -> dict:
    """Stage k (1…hosts): k clusters running, ``events`` × ``subscriptions`` deliveries."""
    reason = why_not_runnable()
    if reason:
        return {"skipped": reason}
    backend = Backend("postgres", workers=workers)
    cleaned = clean_leftovers(backend.admin_url)
    tag = TAG_PREFIX + secrets.token_hex(3)
    state = State(tag)
    state.data["databases"].append(backend.name)
    state.data["dirs"].append(str(backend.tmp))
    state.data["redis_url"] = backend.redis_url
    state.save()
    try:
        with Processes(backend.tmp, grace=10) as processes:
            net = Network(hosts, processes, state)
            net.up()
            backend.webhooks = {
                **(webhooks or {}),
                "ALLOWED_NETWORKS": [str(net.subnet)],
            }
            backend.create()
            pg = urlsplit(backend.database_url)
            rd = urlsplit(backend.redis_url)
            pg_port = net.forward("postgresql", pg.hostname, pg.port or 5432)
            rd_port = net.forward("redis", rd.hostname, rd.port or 6379)
            ns_env = backend.env(
                DATABASE_URL=_via(backend.database_url, net.gateway, pg_port),
                REDIS_URL=_via(backend.redis_url, net.gateway, rd_port),
            )
            forwarder_cost = {
                "direct_from_root_namespace": _run_json(
                    _probe_cmd(backend.database_url, backend.redis_url, probe_n)
                ),
                "through_forwarder_from_a_namespace": _run_json(
                    net.in_namespace(
                        1, _probe_cmd(ns_env["DATABASE_URL"], ns_env["REDIS_URL"], probe_n)
                    )
                ),
            }
            log = backend.tmp / "received.log"
            ports = processes.receiver(
                ports=subscriptions, log=log, host=net.gateway, log_peer=True
            )
            receiver = processes.procs[-1]
            state.add("pids", [receiver.pid, proc_stat(receiver.pid)["start"]])
            urls = [f"http://{net.gateway}:{ports[i]}/hook/{i}" for i in range(subscriptions)]
            host(backend.env(), "subscribe", *urls)
            groups = {
                "receiver": receiver.pid,
                "forwarder_postgresql": net.forwarders["postgresql"].pid,
                "forwarder_redis": net.forwarders["redis"].pid,
            }
            # Baseline: one cluster in the root namespace, straight to 127.0.0.1 (no veth, no
            # forwarder); from the receiver's side it sends from the bridge address.
            cluster = net.start("qcluster-root", [sys.executable, "manage.py", "qcluster"],
                                backend.env())  # fmt: skip
            groups["qcluster_root"] = cluster.pid
            time.sleep(4)
            baseline = _stage("root", {net.gateway: "root_namespace"}, backend, net, groups, log,
                              events, subscriptions, timeout)  # fmt: skip
            print(f"scaleout: baseline {json.dumps(_brief(baseline))}", file=sys.stderr)
            processes.stop(cluster)
            del groups["qcluster_root"]
            stages = []
            for k in range(1, hosts + 1):
                cluster = net.start(
                    f"qcluster-{k}", net.in_namespace(k, [sys.executable, "manage.py", "qcluster"]),
                    ns_env,
                )  # fmt: skip
                groups[f"qcluster_{k}"] = cluster.pid
                time.sleep(4)  # Django set up, workers forked and polling
                if cluster.poll() is not None:
                    raise RuntimeError(f"qcluster {k} exited (logs kept in {LOGS / tag})")
                running = {net.address(i): f"host_{i}" for i in range(1, k + 1)}
                stages.append(
                    _stage(f"s{k}", running, backend, net, groups, log, events, subscriptions,
                           timeout)
                )  # fmt: skip
                print(f"scaleout: {json.dumps(_brief(stages[-1]))}", file=sys.stderr, flush=True)
    except BaseException:
        shutil.copytree(backend.tmp, LOGS / tag, dirs_exist_ok=True)  # for a post-mortem
        print(f"scaleout: failed; process logs kept in {LOGS / tag}", file=sys.stderr)
        raise
    finally:
        remove_tag(tag)
        backend.drop()
        state.remove()
    return {
        "tag": tag,  # the prefix of its namespaces and links, all removed by now
        "events_per_stage": events,
        "subscriptions": subscriptions,
        "deliveries_per_stage": events * subscriptions,
        "workers_per_host": workers,
        "settings": webhooks or {},
        "network": "one bridge in the root namespace, a veth pair + namespace per host",
        "forwarder": "socat (fork, nodelay) on the bridge address, to 127.0.0.1",
        "forwarder_cost_round_trip": forwarder_cost,
        "leftovers_removed_first": cleaned,
        "baseline_one_host_in_root_namespace": baseline,
        "stages": stages,
        "limit": name_the_limit(stages),
    }


class LogTail:
    """The receiver's log read as it grows (only the new lines each time): the webhook-ids
    answered 2xx for titles starting with ``prefix``."""

    def __init__(self, path: Path, prefix: str) -> None:
        self.path, self.prefix, self.offset, self.ids = path, prefix, 0, set()

    def ok_ids(self) -> set:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read()
        except OSError:
            return self.ids
        end = chunk.rfind(b"\n") + 1  # a line still being written is read next time
        self.offset += end
        for line in chunk[:end].decode().splitlines():
            parts = line.split("\t")
            if len(parts) >= 6 and parts[5].startswith(self.prefix) and parts[3].startswith("2"):
                self.ids.add(parts[2])
        return self.ids


def _stage(
    name: str, hosts: dict[str, str], backend, net, groups, log, events, subscriptions, timeout
) -> dict:
    """One fixed load with the clusters of ``hosts`` (sender address -> host name) running;
    its events' titles start with ``name``, which tells its deliveries apart in the log."""
    prefix = f"{name}-"
    expected = events * subscriptions
    succeeded_before = host(backend.env(), "status")["deliveries"].get("succeeded", 0)
    meter = CpuMeter(backend.name, groups)
    # The host process starts (Django setup) first and saves from ``start_at`` on, when the
    # meters start: the CPU window holds the saves and the deliveries, not start-up work.
    start_at = time.time() + 4
    creating = subprocess.Popen(
        [sys.executable, "-m", "bench.host", "create", "--n", str(events), "--prefix", prefix,
         "--start-at", str(start_at)],
        cwd=_root(), env=backend.env(), stdout=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    net.state.add("pids", [creating.pid, proc_stat(creating.pid)["start"]])
    time.sleep(max(0.0, start_at - time.time()))
    driver0 = sum(os.times()[:2])
    before = meter.snapshot()
    wall0 = time.time()

    tail = LogTail(log, prefix)

    def delivered() -> bool:
        return len(tail.ok_ids()) >= expected

    out, _ = creating.communicate(timeout=timeout)
    if creating.returncode:
        raise RuntimeError(f"bench.host create failed ({creating.returncode})")
    made = json.loads(out.strip().splitlines()[-1])
    complete = wait_until(delivered, timeout, 0.1)
    after = meter.snapshot()
    driver = os.times()
    driver_cpu = driver.user + driver.system - driver0
    wall1 = time.time()
    # Every delivery of this stage recorded as succeeded (no pending left behind)?
    settled = wait_until(
        lambda: (
            host(backend.env(), "status")["deliveries"].get("succeeded", 0)
            >= succeeded_before + expected
        ),
        30,
        0.5,
    )
    time.sleep(1)  # a late duplicate would land now
    rows = [r for r in read_log(log, with_peer=True) if r[5].startswith(prefix)]
    ok = [r for r in rows if 200 <= r[3] < 300]
    per_id = Counter(r[2] for r in ok)
    last = max((r[0] for r in ok), default=wall1)
    seconds = last - made["started"]
    cpu = CpuMeter.delta(before, after)
    cpu["host_process"] = round(made["cpu_seconds_creating"], 3)
    cpu["benchmark_driver"] = round(driver_cpu, 3)  # this process: reading the log as it grows
    window = after["machine_total"] - before["machine_total"]
    cpu_window = wall1 - wall0
    per_host = Counter(hosts.get(r[6], f"other:{r[6]}") for r in ok)
    return {
        "hosts": len(hosts),
        "complete": complete,
        "settled_in_database": settled,
        "expected": expected,
        "received_distinct": len(per_id),
        "lost": expected - len(per_id),
        "duplicates": sum(c - 1 for c in per_id.values()),
        "signature_failures": sum(not r[4] for r in rows),
        "non_2xx_answers": len(rows) - len(ok),
        "seconds": round(seconds, 3),
        "deliveries_per_s": round(len(per_id) / seconds, 1) if seconds > 0 else 0,
        "per_host": {
            name: {"deliveries": n, "deliveries_per_s": round(n / seconds, 1)}
            for name, n in sorted(per_host.items())
        },
        "host_saves_per_s": round(events / (made["created"] - made["started"]), 1),
        "cpu_window_s": round(cpu_window, 3),
        "cpu_seconds": {
            key: value for key, value in cpu.items() if key not in ("machine_busy", "machine_total")
        },
        "machine_cpu_busy_fraction": round(cpu["machine_busy"] / window, 3) if window else 0,
        # Busy CPU seconds of the machine no component above used: other work on the machine.
        "cpu_seconds_not_this_run": round(
            cpu["machine_busy"]
            - sum(
                v
                for k, v in cpu.items()
                if k not in ("machine_busy", "machine_total", "postgresql_this_database")
            ),
            3,
        ),  # fmt: skip
        "cpus": os.cpu_count(),
    }


def _brief(stage: dict) -> dict:
    keys = ("hosts", "lost", "duplicates", "deliveries_per_s", "machine_cpu_busy_fraction")
    return {k: stage[k] for k in keys}


def name_the_limit(stages: list[dict]) -> dict:
    """What the measurements say limits the last stage: CPU seconds per wall second of each
    component (1.0 = one core busy), the machine's busy fraction, and the scaling from 1 host."""
    if not stages:
        return {}
    last = stages[-1]
    wall = last["cpu_window_s"] or 1
    cores = {k: round(v / wall, 2) for k, v in last["cpu_seconds"].items()}
    clusters = round(sum(v for k, v in cores.items() if k.startswith("qcluster_")), 2)
    scaling = [
        round(s["deliveries_per_s"] / stages[0]["deliveries_per_s"], 2)
        if stages[0]["deliveries_per_s"]
        else 0
        for s in stages
    ]
    busy = last["machine_cpu_busy_fraction"]
    other = round(last["cpu_seconds_not_this_run"] / wall, 2)
    if cores.get("receiver", 0) >= 0.85:
        verdict = "the receiver: its one process uses a whole core"
    elif busy >= 0.9:
        top = max(
            (
                ("the qcluster hosts together", clusters),
                ("PostgreSQL", cores.get("postgresql_server", 0)),
                ("Redis", cores.get("redis_server", 0)),
                ("the receiver", cores.get("receiver", 0)),
            ),
            key=lambda kv: kv[1],
        )
        verdict = (
            f"the machine's {last['cpus']} CPUs ({busy:.0%} busy); the largest share is "
            f"{top[0]} ({top[1]} cores); other work on the machine: {other} cores"
        )
    else:
        verdict = f"not CPU ({busy:.0%} of the machine busy): waiting (round trips, locks)"
    # CPU milliseconds per delivery over all stages, and where each part alone would fill the
    # CPUs it can use: PostgreSQL all of this machine's, Redis and the receiver one core each
    # (one process, one thread); and a host per core it is given.
    delivered = sum(st["received_distinct"] for st in stages) or 1
    totals: Counter[str] = Counter()
    for st in stages:
        for key, value in st["cpu_seconds"].items():
            totals["qcluster_all" if key.startswith("qcluster_") else key] += value
    ms = {k: round(v * 1000 / delivered, 3) for k, v in totals.items()}

    def per_s(ms_each: float, cores_available: float) -> float | None:
        return round(cores_available * 1000 / ms_each) if ms_each > 0 else None

    cpus = last["cpus"]
    ceilings = {
        "postgresql_all_cores": per_s(ms.get("postgresql_server", 0), cpus),
        "redis_one_core": per_s(ms.get("redis_server", 0), 1),
        "receiver_one_core": per_s(ms.get("receiver", 0), 1),
        "forwarders_one_core_each": per_s(ms.get("forwarder_postgresql", 0), 1),
        "qcluster_per_core": per_s(ms.get("qcluster_all", 0), 1),
    }
    # With every host on a machine of its own with this machine's core count, how many hosts
    # fill PostgreSQL's (same count of) cores, or the receiver's one: linear in CPU per
    # delivery, so it ignores lock waits; PostgreSQL's cost includes other users of the server.
    per_host = (ceilings["qcluster_per_core"] or 0) * cpus
    extrapolated = {
        "deliveries_per_s_of_one_host_with_its_own_cpus": per_host,
        "hosts_until_postgresql_is_the_limit": round(ceilings["postgresql_all_cores"] / per_host, 1)
        if per_host and ceilings["postgresql_all_cores"]
        else None,
        "hosts_until_receiver_is_the_limit": round(ceilings["receiver_one_core"] / per_host, 1)
        if per_host and ceilings["receiver_one_core"]
        else None,
    }
    return {
        "extrapolated": extrapolated,
        "cores_used_in_last_stage": {**cores, "qcluster_all": clusters},
        "throughput_relative_to_one_host": scaling,
        "cpu_ms_per_delivery": ms,
        "deliveries_per_s_at_which_each_fills_its_cpus": ceilings,
        "verdict": verdict,
    }


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    pr = sub.add_parser("probe")
    pr.add_argument("--pg", required=True)
    pr.add_argument("--redis", required=True)
    pr.add_argument("--n", type=int, default=2000)
    sub.add_parser("clean", help="remove what killed runs left")
    args = p.parse_args(argv)
    if args.cmd == "probe":
        print(json.dumps(probe(args.pg, args.redis, args.n)))
    else:
        from bench.harness import PG_URL

        print(json.dumps({"removed": clean_leftovers(PG_URL)}))


if __name__ == "__main__":
    main()
