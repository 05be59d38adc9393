"""The plots of docs/benchmarks.md, from bench/results/*.json: ``python -m bench.plot``."""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
LABELS = {"sqlite": "SQLite + outbox broker", "postgres": "PostgreSQL + Redis"}
#: Issue 13's latency goals: (ms, what, line style).
LATENCY_GOALS = [
    (8, "PG p50", ":"),
    (30, "PG p99", "--"),
    (100, "SQLite p50", "-."),
]


def _load(name: str):
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def throughput_vs_latency(plt) -> None:
    slow, fast = _load("slow"), _load("throughput")
    if not slow:
        return
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for kind, data in slow["backends"].items():
        if "runs" not in data:
            continue
        points = sorted((r["receiver_delay_ms"], r["deliveries_per_s"]) for r in data["runs"])
        if fast and "deliveries_per_s" in fast["backends"].get(kind, {}):
            points.insert(0, (0.0, fast["backends"][kind]["deliveries_per_s"]))
        ax.plot(*zip(*points, strict=True), marker="o", label=LABELS[kind])
    ax.set_xlabel("receiver answer time (ms)")
    ax.set_ylabel("deliveries per second (2 cores)")
    ax.set_title("Throughput through the whole system vs receiver latency")
    ax.set_ylim(bottom=0)
    ax.legend()
    fig.tight_layout()
    fig.savefig(RESULTS / "throughput_vs_latency.png", dpi=110)


def latency_distribution(plt) -> None:
    data = _load("latency")
    if not data:
        return
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for kind, result in data["backends"].items():
        values = sorted(result.get("latencies_ms", []))
        if not values:
            continue
        ys = [(i + 1) / len(values) for i in range(len(values))]
        ax.plot(
            values,
            ys,
            label=f"{LABELS[kind]} (p50 {result['p50_ms']:.0f} ms, p99 {result['p99_ms']:.0f} ms)",
        )
    for ms, what, style in LATENCY_GOALS:
        ax.axvline(ms, color="grey", linestyle=style, linewidth=1)
        ax.text(ms * 1.04, 0.5, f"goal: {what} ≤ {ms} ms", color="grey", fontsize=7, rotation=90)
    ax.set_xscale("log")
    ax.set_xlabel("event commit → receiver (ms, log scale)")
    ax.set_ylabel("fraction of events")
    ax.set_title(
        f"Latency at {data['backends'].get('postgres', {}).get('rate_per_s', 10):g} "
        "events/s, commit → arrival"
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / "latency_distribution.png", dpi=110)


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    throughput_vs_latency(plt)
    latency_distribution(plt)
    print(f"plots written to {RESULTS}")


if __name__ == "__main__":
    main()
