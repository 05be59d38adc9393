"""What a benchmark run costs per delivery: CPU time and rows written (issue 23).

Rates follow whatever else the machine runs; CPU time per delivery much less so. While a
run goes on, ``CpuSampler`` reads every ``interval`` seconds, from ``/proc``:

- the CPU time of each watched process group (``qcluster`` with its workers, the host,
  the receiver): utime + stime of every live process of the group's session, plus what
  its reaped children used (cutime + cstime), so a recycled worker's time is not lost;
- the CPU time of the PostgreSQL backends serving the run's database (the pids
  ``pg_stat_activity`` lists for it, looked up again every second);
- the whole machine's busy time (``/proc/stat``: everything but idle and iowait), which on
  a shared machine includes the other users'.

``between(t0, t1)`` interpolates each counter at two wall-clock times (the run's timed
window). ``table_writes`` reads PostgreSQL's cumulative rows inserted and updated per table
(``pg_stat_user_tables``): read once before the host saves and once after every process
has exited (a backend reports its counts at exit at the latest), their difference is every
row the run wrote. Linux only; elsewhere the figures are left out.
"""

from __future__ import annotations

import os
import threading
import time
from bisect import bisect_left

TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_stat(pid: int) -> tuple[int, int] | None:
    """(session id, utime + stime + cutime + cstime in ticks) of ``pid``, or None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read()
    except OSError:
        return None
    fields = text[text.rindex(b")") + 2 :].split()  # after "pid (comm) "
    # fields[0] is field 3 (state): session is field 6, utime..cstime fields 14-17.
    return int(fields[3]), sum(int(x) for x in fields[11:15])


def _pid_times(pid: int) -> int:
    stat = _proc_stat(pid)
    return stat[1] if stat else 0


def machine_busy_ticks() -> int:
    with open("/proc/stat") as f:
        values = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal guest guest_nice (guest is in user)
    return sum(values[:8]) - values[3] - values[4]


def session_ticks(session: int) -> int:
    total = 0
    for name in os.listdir("/proc"):
        if name.isdigit():
            stat = _proc_stat(int(name))
            if stat and stat[0] == session:
                total += stat[1]
    return total


class CpuSampler:
    """Samples CPU counters in a thread of its own until ``stop``; see the module's doc.

    ``groups``: {name: a ``subprocess.Popen`` started with ``start_new_session``} (its pid is
    its session id). ``pg``: (an admin URL, the run's database name) for its backends.
    """

    def __init__(self, groups: dict, pg: tuple[str, str] | None = None, interval=0.05):
        self.groups = dict(groups)
        self.pg = pg
        self.interval = interval
        self.samples: list[tuple[float, dict]] = []
        self._stop = threading.Event()
        self._pg_pids: set[int] = set()
        self._pg_gone: dict[int, int] = {}  # a backend's last ticks, once it has exited
        self._thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)

    def add(self, name: str, proc) -> None:
        self.groups[name] = proc

    def start(self) -> CpuSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        conn, looked_up = None, 0.0
        pg_last: dict[int, int] = {}
        while True:
            if self.pg and time.monotonic() - looked_up > 1.0:
                conn = conn or _connect(self.pg[0])
                if conn is not None:
                    try:
                        rows = conn.execute(
                            "SELECT pid FROM pg_stat_activity WHERE datname = %s", (self.pg[1],)
                        ).fetchall()
                        self._pg_pids.update(pid for (pid,) in rows)
                    except Exception:  # noqa: BLE001 - a figure less, not a failed run
                        conn = None
                looked_up = time.monotonic()
            sample = {"machine": machine_busy_ticks()}
            for name, proc in list(self.groups.items()):
                sample[name] = session_ticks(proc.pid)
            if self.pg:
                for pid in self._pg_pids:
                    ticks = _proc_stat(pid)
                    if ticks is None:
                        self._pg_gone.setdefault(pid, pg_last.get(pid, 0))
                    else:
                        pg_last[pid] = ticks[1]
                sample["postgres"] = sum(pg_last.values())
            self.samples.append((time.time(), sample))
            if self._stop.wait(self.interval):
                break
        if conn is not None:
            conn.close()

    def at(self, when: float) -> dict:
        """Every counter, in seconds, interpolated at wall-clock time ``when``."""
        times = [t for t, _ in self.samples]
        i = min(max(1, bisect_left(times, when)), len(times) - 1)
        (t0, a), (t1, b) = self.samples[i - 1], self.samples[i]
        share = 0.0 if t1 == t0 else min(1.0, max(0.0, (when - t0) / (t1 - t0)))
        return {k: (a.get(k, 0) + (b.get(k, 0) - a.get(k, 0)) * share) / TICKS for k in b}

    def between(self, start: float, end: float) -> dict:
        """CPU seconds each counter used from ``start`` to ``end`` (wall-clock times)."""
        if len(self.samples) < 2:
            return {}
        a, b = self.at(start), self.at(end)
        return {k: b[k] - a.get(k, 0.0) for k in b}


def _connect(url: str):
    try:
        import psycopg

        return psycopg.connect(url, autocommit=True, connect_timeout=2)
    except Exception:  # noqa: BLE001
        return None


def table_writes(database_url: str) -> dict:
    """{table: rows inserted + updated so far} of a PostgreSQL database (its user tables),
    with "transactions" (committed) under that name. Empty if unreachable."""
    conn = _connect(database_url)
    if conn is None:
        return {}
    with conn:
        rows = conn.execute(
            "SELECT relname, n_tup_ins, n_tup_upd FROM pg_stat_user_tables"
        ).fetchall()
        [(commits,)] = conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        ).fetchall()
    counts = {name: {"inserted": ins, "updated": upd} for name, ins, upd in rows}
    counts["transactions"] = {"committed": commits}
    return counts


def writes_between(before: dict, after: dict) -> dict:
    """Rows written per table from one ``table_writes`` to the next (tables with any)."""
    out = {}
    for name, counts in after.items():
        earlier = before.get(name, {})
        delta = {k: v - earlier.get(k, 0) for k, v in counts.items()}
        if any(delta.values()):
            out[name] = delta
    return out


def per_delivery(cpu: dict, writes: dict, deliveries: int) -> dict:
    """The figures of issue 23, per delivery: CPU in ms, rows and transactions."""
    if not deliveries:
        return {}
    out = {f"{name}_cpu_ms": seconds * 1000 / deliveries for name, seconds in cpu.items()}
    if writes:
        tables = {k: v for k, v in writes.items() if k != "transactions"}
        out["rows_written"] = sum(sum(v.values()) for v in tables.values()) / deliveries
        out["rows_by_table"] = {
            name: {k: v / deliveries for k, v in counts.items()} for name, counts in tables.items()
        }
        out["transactions"] = writes.get("transactions", {}).get("committed", 0) / deliveries
    return out
