"""``adabench cost``: where a finished sweep's wall time went, from its runs' ``metrics.json``.

Sums each phase over the completed runs: set-up (data, model, weights) with the frozen
trunk's cached outputs computed or read, training (the trainable layers' forward, backward and
optimizer), embedding and scoring; the rest is process start, imports, Hydra and writing.

Runs are read as the report reads them (:func:`adabench.report.collect.run_records`): a result
that resume set aside in ``superseded/`` is not counted, and overlapping folders count a run once.

The wall time is either given (``--wall``: a file with ``wall_s``, as ``seed_protocol.py``
writes it) or, with ``--from-runs`` for sweeps that ran in several processes or sessions,
the worker time: each process's busy stretches from its runs' ``started_at`` /
``finished_at`` (split where it idled more than ``--gap`` seconds); the time the sweep needs on
``--cores`` cores is the worker time over the cores (every worker one thread).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

PHASES = ("setup_s", "train_s", "embed_s", "score_s", "total_s")


def worker_spans(runs: Sequence[dict], gap: float = 300.0) -> list[tuple[float, float]]:
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


def union_length(spans: Sequence[tuple[float, float]]) -> float:
    """Seconds during which at least one worker was busy."""
    total, last = 0.0, -float("inf")
    for t0, t1 in sorted(spans):
        if t1 > last:
            total += t1 - max(t0, last)
            last = t1
    return total


@dataclass
class SweepCost:
    """Where a sweep's time went.

    Attributes:
        runs: Runs read (``completed``: of them, completed; ``trained``: with training).
        wall: The denominator of the shares: the sweep's wall time, or the worker time.
        parts: (what, seconds) of each phase, the rest, and the wall or worker time.
        spans: With worker time: the worker stretches; ``elapsed``: clock time with any busy.
    """

    runs: int
    completed: int
    trained: int
    wall: float
    parts: list[tuple[str, float]]
    train_s: float
    spans: list[tuple[float, float]] | None = None
    elapsed: float | None = None

    @property
    def not_training(self) -> float:
        """Share of the wall (or worker) time not spent training the trainable layers."""
        return 1.0 - self.train_s / self.wall

    def rows(self) -> list[list[str]]:
        """``[part, seconds, share]`` for a table."""
        return [[n, f"{s:.1f}", f"{100 * s / self.wall:.1f}%"] for n, s in self.parts]


def sweep_cost(records: Sequence[dict], wall: float | None = None, gap: float = 300.0) -> SweepCost:
    """The cost of the runs ``records``; worker time from their timestamps when ``wall`` is None."""
    done = [r for r in records if r.get("status") == "completed"]
    spans = elapsed = None
    if wall is None:
        spans = worker_spans(done, gap)
        wall = sum(t1 - t0 for t0, t1 in spans)
        elapsed = union_length(spans)
    cache = [r.get("trunk_cache") or {} for r in done]
    trunk = sum(c.get("seconds", 0.0) for c in cache)
    computed, reused = (
        sum(c.get("computed", 0) for c in cache),
        sum(c.get("reused", 0) for c in cache),
    )
    phase = {k: sum((r.get("times") or {}).get(k, 0.0) for r in done) for k in PHASES}
    parts = [
        ("set-up: data, model, weights (all runs)", phase["setup_s"] - trunk),
        (f"frozen trunk: {computed} images computed, {reused} read from the cache", trunk),
        ("training the unfrozen layers + neck + head", phase["train_s"]),
        ("embedding for evaluation", phase["embed_s"]),
        ("k-NN scoring and metrics", phase["score_s"]),
        ("process start, imports, Hydra, writing results", wall - phase["total_s"]),
        ("worker time (all processes)" if spans is not None else "sweep wall time", wall),
    ]
    trained = sum(1 for r in done if not r.get("baseline"))
    return SweepCost(
        len(records), len(done), trained, wall, parts, phase["train_s"], spans, elapsed
    )


def read_runs(sweeps: Sequence[str | Path], since: str | None = None) -> list[dict]:
    """The runs' records below ``sweeps`` (not superseded), started at or after ``since``."""
    from adabench.report.collect import run_records

    records = [record for _, record in run_records(sweeps)]
    if since:  # e.g. the runs after other work stopped sharing the cores
        start = datetime.fromisoformat(since)
        records = [
            r
            for r in records
            if r.get("started_at") and datetime.fromisoformat(r["started_at"]) >= start
        ]
    return records


def parser() -> argparse.ArgumentParser:
    """The arguments of ``adabench cost`` (``benchmarks/sweep_cost.py`` adds ``--write``)."""
    p = argparse.ArgumentParser(
        prog="adabench cost",
        description="Where a finished sweep's wall time went, from its runs' metrics.json.",
    )
    p.add_argument("sweep", help="a sweep (or tuning study) folder")
    p.add_argument("--wall", default=None, help="a JSON file with the sweep's wall_s")
    p.add_argument("--budget", type=float, default=1800.0, help="seconds (default 1800)")
    p.add_argument("--from-runs", action="store_true", help="worker time from run timestamps")
    p.add_argument("--cores", type=int, default=2, help="with --from-runs: cores of the estimate")
    p.add_argument("--gap", type=float, default=300.0, help="with --from-runs: idle split, s")
    p.add_argument("--since", default=None, help="only runs started at or after this ISO time")
    return p


def summary(
    args: argparse.Namespace, cost: SweepCost, info: dict[str, Any]
) -> tuple[str, float, str]:
    """(head line, ratio to the budget, what the ratio is) of a cost."""
    counts = (
        f"`{args.sweep}`: {cost.completed} of {cost.runs} runs completed ({cost.trained} "
        f"trained, {cost.completed - cost.trained} no-training baselines)"
    )
    not_training = f"share not spent training: {100 * cost.not_training:.1f}%"
    if cost.spans is not None:
        need = cost.wall / args.cores
        head = (
            f"{counts} by {len(cost.spans)} worker stretches (one thread each; "
            f"{(cost.elapsed or 0) / 3600:.2f} h of clock time with any running); worker time "
            f"{cost.wall / 3600:.2f} h, i.e. {need / 3600:.2f} h on {args.cores} cores (budget "
            f"{args.budget / 3600:.1f} h); " + not_training
        )
        return head, need / args.budget, f"time on {args.cores} cores / budget"
    head = (
        f"{counts}; {info.get('cpus')} cores, load {info.get('load_before', 0):.2f} before; "
        f"wall {cost.wall / 60:.1f} min (budget {args.budget / 60:.0f} min); " + not_training
    )
    return head, cost.wall / args.budget, "wall time / budget"


def measure(args: argparse.Namespace) -> tuple[SweepCost, dict[str, Any]]:
    """Read the sweep and compute its cost; ``info`` is the wall-time file's content."""
    info: dict[str, Any] = {}
    wall = None
    if not args.from_runs:
        wall_file = Path(args.wall) if args.wall else Path(args.sweep) / "sweep_wall.json"
        if not wall_file.exists():
            raise FileNotFoundError(
                f"No wall time for {args.sweep}: give --wall FILE (with wall_s), or --from-runs "
                "to take the worker time from the runs' timestamps."
            )
        info = json.loads(wall_file.read_text(encoding="utf-8"))
        wall = float(info["wall_s"])
    return sweep_cost(read_runs([args.sweep], args.since), wall, args.gap), info


def main(argv: Sequence[str] | None = None) -> int:
    """``adabench cost SWEEP [--from-runs] [--cores N] [--since T] [--wall FILE]``."""
    from adabench.report.tables import markdown_table

    p = parser()
    args = p.parse_args(argv)
    try:
        cost, info = measure(args)
    except (FileNotFoundError, ValueError) as err:
        p.error(str(err))
    head, ratio, what = summary(args, cost, info)
    print(head)
    print(markdown_table(["part", "seconds", "share"], cost.rows()))
    print(f"ratio ({what}): {ratio:.3f}")
    return 0
