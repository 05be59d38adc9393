"""Were attempts made on schedule? Each attempt's start against the time it was due.

The first attempt is due when the host's transaction commits; attempt n + 1 is due when
attempt n ended plus the schedule's n-th step (benchmarks run with no jitter, so that time
is exact). An attempt still missing when the measurement ends, though it was due, counts
as late by at least the time since it was due ("overdue"): a retry never made is the
latest of all.

Nothing here imports Django: it reads what ``python -m bench.host attempts`` printed.
"""

from __future__ import annotations

import time


def lateness(
    deliveries: list[dict],
    commit_times: dict[str, float],
    schedule: list[float],
    *,
    now: float | None = None,
) -> dict[str, list[float]]:
    """Seconds late of every first attempt, every retry, every overdue missing attempt, and
    of each delivery its latest attempt (``worst_per_delivery``: on schedule if ≤ 1 s).

    ``deliveries``: ``bench.host attempts`` rows of one or more webhooks; ``commit_times``:
    {event title: commit time}; a delivery whose event is not in it is skipped."""
    now = time.time() if now is None else now
    first, retries, overdue, worst = [], [], [], []
    for row in deliveries:
        committed = commit_times.get(row["title"])
        if committed is None:
            continue
        due = committed
        attempts = row["attempts"]
        late = []
        for index, (_, start, end) in enumerate(attempts):
            late.append(start - due)
            (first if index == 0 else retries).append(late[-1])
            if index >= len(schedule):
                break
            due = end + schedule[index]
        finished = row["status"] != "pending" or len(attempts) > len(schedule)
        if not finished and due < now:
            overdue.append(now - due)
            late.append(overdue[-1])
        worst.append(max(late, default=0.0))
    return {"first": first, "retries": retries, "overdue": overdue, "worst_per_delivery": worst}


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(values: list[float], *, late_over: float = 1.0) -> dict:
    """p50 / p99 / max in milliseconds, and how many are later than ``late_over`` seconds."""
    return {
        "n": len(values),
        "p50_ms": round(percentile(values, 0.5) * 1000) if values else None,
        "p99_ms": round(percentile(values, 0.99) * 1000) if values else None,
        "max_ms": round(max(values) * 1000) if values else None,
        f"late_over_{late_over:g}s": sum(v > late_over for v in values),
    }


class CpuMeter:
    """CPU seconds used by process groups (a process and every child it started, including
    the children that already ended and were reaped), and by the whole machine."""

    def __init__(self) -> None:
        import os

        self.ticks = os.sysconf("SC_CLK_TCK")
        self.started = time.monotonic()
        self.machine_start = self._machine()

    @staticmethod
    def _machine() -> tuple[int, int]:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return sum(fields) - idle, sum(fields)

    def group_seconds(self, sid: int) -> float:
        """CPU seconds of every process of session ``sid`` (the harness starts each process in
        a session of its own): live processes, plus their reaped children."""
        import os

        ticks = 0
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            # fields[0] is the state (field 3 of proc(5)): session is field 6, utime 14 …
            if int(fields[3]) == sid:
                ticks += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
        return ticks / self.ticks

    def machine(self) -> dict:
        """Busy share of all cores since this meter started, and the load average."""
        import os

        busy0, total0 = self.machine_start
        busy1, total1 = self._machine()
        share = (busy1 - busy0) / max(1, total1 - total0)
        return {
            "cores": os.cpu_count(),
            "busy_share": round(share, 3),
            "loadavg": list(os.getloadavg()),
            "wall_seconds": round(time.monotonic() - self.started, 1),
        }
