"""Processes for benchmarks and chaos tests: a database of their own, receivers, qcluster
workers, a sweeper and a host, each started here and stopped by its own PID.

Nothing here imports Django: the processes it starts do (``DJANGO_SETTINGS_MODULE`` =
``bench.settings``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/4")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_available(admin_url: str = PG_URL) -> bool:
    try:
        import psycopg

        psycopg.connect(admin_url, connect_timeout=2).close()
    except Exception:  # noqa: BLE001 - no server, no driver: the PostgreSQL run is skipped
        return False
    return redis_available(REDIS_URL)


def redis_available(url: str) -> bool:
    try:
        import redis

        redis.from_url(url, socket_connect_timeout=1).ping()
    except Exception:  # noqa: BLE001
        return False
    return True


@dataclass
class Backend:
    """``sqlite`` (a temporary file, django-q2's ORM broker with ``webhooks.broker.
    OutboxBroker``) or ``postgres`` (a database created for this run, Redis broker)."""

    kind: str
    webhooks: dict = field(default_factory=dict)
    q_cluster: dict = field(default_factory=dict)
    workers: int = 2
    redis_url: str = REDIS_URL
    admin_url: str = PG_URL  # a PostgreSQL database to connect to for CREATE/DROP DATABASE
    name: str = field(default_factory=lambda: f"wh_bench_{uuid.uuid4().hex[:10]}")
    tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="wh-bench-")))
    #: More environment for every process of this backend (e.g. switching metrics on).
    extra_env: dict = field(default_factory=dict)
    #: An existing PostgreSQL database (``name``) to run on, migrated and kept, not created
    #: and dropped (``bench.scale_ladder``: tables a data generator filled).
    existing: bool = False

    @property
    def label(self) -> str:
        return "PostgreSQL + Redis" if self.kind == "postgres" else "SQLite + outbox broker"

    @property
    def database_url(self) -> str:
        if self.kind == "postgres":
            return self.admin_url.rsplit("/", 1)[0] + "/" + self.name
        return f"sqlite:///{self.tmp / 'db.sqlite3'}"

    def env(self, **extra) -> dict:
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
        env.update(
            DJANGO_SETTINGS_MODULE="bench.settings",
            DATABASE_URL=self.database_url,
            Q_NAME=self.name,
            Q_WORKERS=str(self.workers),
            BENCH_WEBHOOKS=json.dumps(self.webhooks),
            BENCH_Q_CLUSTER=json.dumps(self.q_cluster),
            PYTHONUNBUFFERED="1",
        )
        if self.kind == "postgres":
            env["REDIS_URL"] = self.redis_url
        env.update({k: str(v) for k, v in {**self.extra_env, **extra}.items()})
        return env

    def create(self) -> None:
        if self.kind == "postgres" and not self.existing:
            self._admin(f'CREATE DATABASE "{self.name}"')
        manage(self.env(), "migrate", "--run-syncdb", "--noinput")

    def drop(self) -> None:
        if self.kind == "postgres" and self.existing:
            self._flush_redis()
        elif self.kind == "postgres":
            try:
                self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            except Exception as exc:  # noqa: BLE001 - report, keep cleaning up
                print(f"could not drop {self.name}: {exc}", file=sys.stderr)
            self._flush_redis()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql)

    def _flush_redis(self) -> None:
        try:
            import redis

            r = redis.from_url(self.redis_url, socket_connect_timeout=1)
            for key in r.scan_iter(f"*{self.name}*"):
                r.delete(key)
        except Exception:  # noqa: BLE001
            pass


def manage(env: dict, *args: str, timeout: float = 300) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def host(env: dict, *args: str, timeout: float = 600, module: str = "bench.host") -> dict:
    """Run ``python -m bench.host …`` (or another Django ``module``) and return the JSON it
    prints last."""
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode:
        raise RuntimeError(f"{module} {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


class RedisServer:
    """A ``redis-server`` of our own on a free port (never the machine's shared one)."""

    def __init__(self, processes: Processes) -> None:
        self.processes = processes
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = None

    def start(self) -> None:
        cmd = [
            "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        self.proc = self.processes.start(f"redis-{self.port}", cmd, dict(os.environ))
        if not wait_until(lambda: redis_available(self.url), 10, 0.05):
            raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        self.processes.stop(self.proc, grace=5)


class Processes:
    """Every process started through it is stopped (SIGTERM, then SIGKILL of its own process
    group) when the ``with`` block ends, whatever happened in it."""

    def __init__(self, logdir: Path, grace: float = 15) -> None:
        self.logdir = logdir
        self.grace = grace  # seconds a process gets to stop on SIGTERM before SIGKILL
        self.procs: list[subprocess.Popen] = []

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc) -> None:
        for proc in reversed(self.procs):
            self.stop(proc)

    def start(self, name: str, cmd: list[str], env: dict, *, pipe: bool = False):
        log = open(self.logdir / f"{name}.log", "ab")
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE if pipe else log,
            stderr=log,
            start_new_session=True,  # its children share its group: killpg reaches them all
        )
        proc.name = name
        self.procs.append(proc)
        return proc

    def qcluster(self, env: dict, name: str = "qcluster"):
        return self.start(name, [sys.executable, "manage.py", "qcluster"], env)

    def sweeper(self, env: dict, duration: float = 600):
        cmd = [sys.executable, "manage.py", "webhooks_sweep", "--duration", str(duration)]
        return self.start("sweeper", cmd, env)

    def receiver(
        self,
        *,
        ports: int = 1,
        delay: float = 0.0,
        log: Path | None = None,
        secrets: Path | None = None,
        host: str = "127.0.0.1",
        log_peer: bool = False,
        **faults,
    ) -> list[int]:
        cmd = [sys.executable, "-m", "bench.receiver", "--ports", str(ports), "--delay", str(delay)]
        cmd += ["--host", host] + (["--log-peer"] if log_peer else [])
        if log:
            cmd += ["--log", str(log)]
        if secrets:
            cmd += ["--secrets", str(secrets)]
        for name, value in faults.items():
            cmd += [f"--{name.replace('_', '-')}", str(value)]
        proc = self.start("receiver", cmd, {**os.environ, "PYTHONUNBUFFERED": "1"}, pipe=True)
        line = proc.stdout.readline().decode()
        if not line.startswith("PORTS"):
            raise RuntimeError(f"receiver did not start: {line!r}")
        return [int(p) for p in line.split()[1:]]

    @staticmethod
    def kill(proc, sig=signal.SIGKILL) -> None:
        """Send ``sig`` to ``proc``'s own process group (the process and its children)."""
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, proc, grace: float | None = None) -> None:
        grace = self.grace if grace is None else grace
        if proc.poll() is None:
            try:
                os.kill(proc.pid, signal.SIGTERM)
                proc.wait(timeout=grace)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                pass
        self.kill(proc)  # leftover children (workers of a killed cluster)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        if proc.stdout:
            proc.stdout.close()


@contextmanager
def backend(kind: str, **kwargs):
    b = Backend(kind, **kwargs)
    b.create()
    try:
        yield b
    finally:
        b.drop()


def read_log(path: Path, *, with_peer: bool = False) -> list[tuple]:
    """The receiver's log: (arrival, path, webhook-id, status, signature ok, title) rows, and
    the sender's address last when ``with_peer`` (the receiver ran with ``log_peer``)."""
    rows = []
    if not path.exists():
        return rows
    for line in path.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) in (6, 7):
            row = (float(parts[0]), parts[1], parts[2], int(parts[3]), parts[4] == "1", parts[5])
            if with_peer:
                row += (parts[6] if len(parts) == 7 else "",)
            rows.append(row)
    return rows


def wait_until(condition, timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()
