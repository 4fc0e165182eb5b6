"""Where a finished sweep's wall time went, from its runs' metrics.json (no re-running).

    python benchmarks/sweep_cost.py multirun/fmnist_sneaker_boot_pretrained [--budget 1800]
        [--wall docs/results/fmnist_sneaker_boot_pretrained/sweep_wall.json] [--write]
    python benchmarks/sweep_cost.py multirun/suite_fmnist_pairs --from-runs [--cores 2]
        [--since 2026-11-29T16:45:00+00:00]

Sums each phase over the runs: set-up (data, model, weights) with the frozen trunk's cached
outputs computed or read, training (forward/backward/optimizer of the trainable layers), embedding
and scoring; the rest of the wall time is process start, imports and Hydra. The last line is the
sweep's wall time over the budget (30 min per dataset: ≤ 1 meets it).

``--from-runs`` is for sweeps that ran in several processes or sessions (task suites, tuning
studies with ``--parallel``), where no single wall time exists: each worker process's busy time
is read from its runs' ``started_at`` / ``finished_at`` (a process's runs, split where it idled
more than ``--gap`` seconds), the shares are of that worker time, and the wall time the sweep
needs on ``--cores`` cores is the worker time over the cores (every worker one thread).
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path

from _common import finish, table


def worker_spans(runs: list[dict], gap: float = 300.0) -> list[tuple[float, float]]:
    """(start, end) of each worker's busy stretch: its process's runs, split at idle gaps."""
    by_pid: dict[object, list[tuple[float, float]]] = {}
    for r in runs:
        if r.get("started_at") and r.get("finished_at"):
            t0 = datetime.fromisoformat(r["started_at"]).timestamp()
            t1 = datetime.fromisoformat(r["finished_at"]).timestamp()
            by_pid.setdefault((r.get("host"), r.get("pid")), []).append((t0, t1))
    spans = []
    for times in by_pid.values():
        times.sort()
        start, end = times[0]
        for t0, t1 in times[1:]:
            if t0 - end > gap:
                spans.append((start, end))
                start = t0
            end = max(end, t1)
        spans.append((start, end))
    return spans


def union_length(spans: list[tuple[float, float]]) -> float:
    """Seconds during which at least one worker was busy."""
    total, last = 0.0, -float("inf")
    for t0, t1 in sorted(spans):
        if t1 > last:
            total += t1 - max(t0, last)
            last = t1
    return total


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("sweep")
    p.add_argument("--wall", default=None, help="sweep_wall.json written by seed_protocol.py")
    p.add_argument("--budget", type=float, default=1800.0, help="seconds")
    p.add_argument("--from-runs", action="store_true", help="worker time from run timestamps")
    p.add_argument("--cores", type=int, default=2, help="with --from-runs: cores of the estimate")
    p.add_argument("--gap", type=float, default=300.0, help="with --from-runs: idle split, s")
    p.add_argument("--since", default=None, help="only runs started at or after this ISO time")
    p.add_argument("--write", action="store_true")
    args = p.parse_args()
    runs = [json.loads(f.read_text()) for f in sorted(Path(args.sweep).rglob("metrics.json"))]
    if args.since:  # e.g. the runs after other work stopped sharing the cores
        since = datetime.fromisoformat(args.since)
        stamped = [r for r in runs if r.get("started_at")]
        runs = [r for r in stamped if datetime.fromisoformat(r["started_at"]) >= since]
    done = [r for r in runs if r.get("status") == "completed"]
    if args.from_runs:
        spans = worker_spans(done, args.gap)
        wall = sum(t1 - t0 for t0, t1 in spans)  # worker seconds: the shares' denominator
        elapsed = union_length(spans)
    else:
        wall_file = Path(args.wall) if args.wall else None
        if wall_file is None:
            name = Path(args.sweep).name
            wall_file = (
                Path(__file__).resolve().parents[1] / "docs" / "results" / name / "sweep_wall.json"
            )
        info = json.loads(wall_file.read_text())
        wall = float(info["wall_s"])
    trunk = sum((r.get("trunk_cache") or {}).get("seconds", 0.0) for r in done)
    computed = sum((r.get("trunk_cache") or {}).get("computed", 0) for r in done)
    reused = sum((r.get("trunk_cache") or {}).get("reused", 0) for r in done)
    phase = {
        k: sum(r["times"].get(k, 0.0) for r in done)
        for k in ("setup_s", "train_s", "embed_s", "score_s", "total_s")
    }
    rest = wall - phase["total_s"]
    rows = [
        ["set-up: data, model, weights (all runs)", phase["setup_s"] - trunk],
        [f"frozen trunk: {computed} images computed, {reused} read from the cache", trunk],
        ["training the unfrozen layers + neck + head", phase["train_s"]],
        ["embedding for evaluation", phase["embed_s"]],
        ["k-NN scoring and metrics", phase["score_s"]],
        ["process start, imports, Hydra, writing results", rest],
        ["worker time (all processes)" if args.from_runs else "sweep wall time", wall],
    ]
    body = table(
        ["part", "seconds", "share"],
        [[name, f"{s:.1f}", f"{100 * s / wall:.1f}%"] for name, s in rows],
    )
    trained = [r for r in done if not r.get("baseline")]
    counts = (
        f"`{args.sweep}`: {len(done)} of {len(runs)} runs completed ({len(trained)} trained, "
        f"{len(done) - len(trained)} no-training baselines)"
    )
    not_training = f"share not spent training: {100 * (1 - phase['train_s'] / wall):.1f}%"
    if args.from_runs:
        need = wall / args.cores
        head = (
            f"{counts} by {len(spans)} worker stretches (one thread each; {elapsed / 3600:.2f} h "
            f"of clock time with any running); worker time {wall / 3600:.2f} h, i.e. "
            f"{need / 3600:.2f} h on {args.cores} cores (budget {args.budget / 3600:.1f} h); "
            + not_training
        )
        ratio, what = need / args.budget, f"time on {args.cores} cores / budget"
        flags = f" --from-runs --cores {args.cores} --budget {args.budget:.0f}"
        flags += f" --since {args.since}" if args.since else ""
    else:
        head = (
            f"{counts}; {info.get('cpus')} cores, load {info.get('load_before'):.2f} before; "
            f"wall {wall / 60:.1f} min (budget {args.budget / 60:.0f} min); " + not_training
        )
        ratio, what, flags = wall / args.budget, "wall time / 30-min budget", ""
    name = Path(args.sweep).name
    finish(
        f"sweep_cost_{name}",
        f"9. Sweep cost: {name}",
        head,
        body,
        ratio,
        what,
        args.write,
        cmd=f"python benchmarks/sweep_cost.py {args.sweep}{flags} --write",
    )


if __name__ == "__main__":
    main()
