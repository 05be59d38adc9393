"""Is the webhook service healthy? One verdict, read by ``manage.py webhooks_health`` and the
health URLs (``webhooks.health_urls``), from the figures of ``webhooks.stats``.

Checks (each named in the report):

- ``database``: the database answers (if not, the verdict is "unknown": nothing else can
  be told);
- ``keys``: ``WEBHOOKS_ENCRYPTION_KEYS`` is usable (``webhooks.E010``) and decrypts the
  stored secrets of a sample of webhooks (``webhooks.W004``);
- ``due_age``: the oldest due delivery has waited at most ``max_due_age`` seconds;
- ``fanout_age``: the oldest event not yet fanned out is at most ``max_fanout_age`` old;
- ``sweeper``: a sweep ran to its end within ``max_sweep_age`` seconds;
- ``workers``: at least ``min_workers`` worker processes ran a task (or started) within
  ``worker_window`` seconds. An idle cluster still runs the sweep every minute, so one
  worker at least is seen while the cluster is up.

Webhooks disabled and retries waiting are reported, not judged: a receiver answering 410
or failing for days is the receiver's trouble, not the service's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime

from django.db import DatabaseError, connections, router
from django.utils import timezone

from . import checks, encryption, stats
from .conf import conf

OK, UNHEALTHY, UNKNOWN = "ok", "unhealthy", "unknown"
#: The exit code of ``webhooks_health`` for each verdict.
EXIT_CODES = {OK: 0, UNHEALTHY: 1, UNKNOWN: 2}


@dataclass(frozen=True)
class Thresholds:
    max_due_age: float = 300.0
    max_fanout_age: float = 300.0
    max_sweep_age: float = 180.0
    min_workers: int = 1
    worker_window: float = 180.0


@dataclass
class Report:
    status: str = OK
    checked_at: datetime = field(default_factory=timezone.now)
    problems: dict[str, str] = field(default_factory=dict)  # check name -> why it fails
    figures: dict = field(default_factory=dict)
    thresholds: dict = field(default_factory=dict)

    def fail(self, check: str, message: str) -> None:
        self.problems[check] = message
        if self.status == OK:
            self.status = UNHEALTHY

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]

    def as_dict(self) -> dict:
        report = asdict(self)
        report["checked_at"] = self.checked_at.isoformat()
        return report


def keys_problem() -> str | None:
    """Why the keys cannot be used (E010: not keys; W004: they do not decrypt what is
    stored), or None."""
    problem = encryption.keys_problem(conf.ENCRYPTION_KEYS)
    if problem:
        return f"{problem} (webhooks.E010)"
    problem = checks.stored_secrets_problem()
    return f"{problem} (webhooks.W004)" if problem else None


def database_reachable() -> bool:
    from .models import Delivery

    try:
        with connections[router.db_for_read(Delivery)].cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except DatabaseError:
        return False


def node(report: Report | None = None, *, keys=keys_problem) -> Report:
    """Can this process do its work: the database answers and the keys are usable.
    What a load balancer asks: it says nothing of the other hosts. ``keys``: how to read
    the keys' problem (the health URL caches it)."""
    report = report or Report()
    reachable = database_reachable()
    report.figures["database_reachable"] = reachable
    if not reachable:
        report.status = UNKNOWN
        report.problems["database"] = "The database cannot be reached."
        return report
    problem = keys()
    report.figures["keys_usable"] = problem is None
    if problem:
        report.fail("keys", problem)
    return report


def platform(thresholds: Thresholds | None = None, *, keys=keys_problem) -> Report:
    """The whole service: this node, then the backlog and the background processes."""
    thresholds = thresholds or Thresholds()
    report = node(Report(thresholds=asdict(thresholds)), keys=keys)
    if report.status == UNKNOWN:
        return report
    try:
        backlog = stats.backlog(report.checked_at)
        seen = stats.processes(thresholds.worker_window, report.checked_at)
    except DatabaseError as exc:
        report.status = UNKNOWN
        report.problems["database"] = f"The figures could not be read: {type(exc).__name__}."
        return report
    sweep_age = seen.last_sweep_age
    report.figures |= {
        "oldest_due_age_seconds": round(backlog.oldest_due_age, 3),
        "due": backlog.due,
        "events_waiting": backlog.events_waiting,
        "oldest_event_waiting_age_seconds": round(backlog.oldest_event_waiting_age, 3),
        "retries_waiting": backlog.retries_waiting,
        "webhooks_disabled": backlog.webhooks_disabled,
        "held": backlog.held,
        "last_sweep_age_seconds": None if sweep_age is None else round(sweep_age, 3),
        "workers_seen": seen.workers_seen,
    }
    if backlog.oldest_due_age > thresholds.max_due_age:
        report.fail(
            "due_age",
            f"{backlog.due} deliveries are due, the oldest for {backlog.oldest_due_age:.0f} s "
            f"(more than {thresholds.max_due_age:g} s): workers are down or cannot keep up.",
        )
    if backlog.oldest_event_waiting_age > thresholds.max_fanout_age:
        report.fail(
            "fanout_age",
            f"{backlog.events_waiting} events wait to be fanned out, the oldest for "
            f"{backlog.oldest_event_waiting_age:.0f} s (more than "
            f"{thresholds.max_fanout_age:g} s).",
        )
    if sweep_age is None or sweep_age > thresholds.max_sweep_age:
        when = (
            "never ran"
            if sweep_age is None
            else f"last ran {sweep_age:.0f} s ago (more than {thresholds.max_sweep_age:g} s)"
        )
        report.fail(
            "sweeper",
            f"The sweeper {when}: is a qcluster running, with the 'webhooks: sweep' schedule?",
        )
    if seen.workers_seen < thresholds.min_workers:
        report.fail(
            "workers",
            f"{seen.workers_seen} worker process{'' if seen.workers_seen == 1 else 'es'} "
            f"seen in the last "
            f"{thresholds.worker_window:g} s (fewer than {thresholds.min_workers}).",
        )
    return report


def as_text(report: Report) -> str:
    lines = [f"webhooks: {report.status.upper()}"]
    lines += [f"  {check}: {message}" for check, message in report.problems.items()]
    lines += [f"  {name}: {value}" for name, value in report.figures.items()]
    return "\n".join(lines)
