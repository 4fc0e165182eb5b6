"""Suites at a glance (summary.md): task × row medians, and every pair's verdict across tasks."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from adabench.metrics import higher_is_better
from adabench.report.stats import GroupStats, decide, fmt, prob

PAIR_MATRIX_NOTE = (
    "Every pair across tasks (row vs column): `>` the row is better, `<` the column is, `≈` "
    "equivalent within the ROPE, each with its posterior probability (rounded down); `?` "
    "undecided, with "
    "P(row better) / P(equivalent) / P(column better)."
)


def task_matrix(stats: Sequence[GroupStats], metric: str) -> tuple[list[str], list[list[str]]]:
    """Median ``metric`` of every task × row, the task's best in bold; no-training rows first.

    Empty when the sweep has fewer than two tasks (the per-task table says it all then).
    """
    tasks = sorted({s.dataset for s in stats})
    if len(tasks) < 2:
        return [], []
    columns = sorted({(not s.baseline, s.loss) for s in stats})  # baselines, then the losses
    median = {(s.dataset, s.loss): s.median for s in stats}
    pick = max if higher_is_better(metric) else min
    rows = []
    for task in tasks:
        top = pick(v for (t, _), v in median.items() if t == task)
        cells = []
        for _, name in columns:
            value = median.get((task, name))
            text = fmt(value)
            cells.append(f"**{text}**" if value == top else text)
        rows.append([task, *cells])
    runs = sorted({s.n for s in stats})
    counts = str(runs[0]) if len(runs) == 1 else f"{runs[0]}–{runs[-1]}"
    headers = [f"task (median {metric} of {counts} runs)"] + [
        name if trained else f"{name} (no training)" for trained, name in columns
    ]
    return headers, rows


def pair_matrix(verdict: Any) -> tuple[list[str], list[list[str]]]:
    """P(row better) / P(equivalent) / P(column better) across tasks, rows by mean rank.

    Each cell above the diagonal reads ``> 0.99`` (the row is better), ``≈ 0.97`` (equivalent
    within the ROPE) or ``? 0.76 / 0.24 / 0.00`` (undecided: the three probabilities), at the
    verdict's rule (:func:`.stats.decide`).
    """
    order = sorted(verdict.losses, key=lambda name: verdict.losses[name]["mean_rank"])
    if len(order) < 2 or not verdict.pairs:
        return [], []
    probs = {}
    for p in verdict.pairs:
        probs[(p["a"], p["b"])] = (p["p_a_better"], p["p_equivalent"], p["p_b_better"])
        probs[(p["b"], p["a"])] = (p["p_b_better"], p["p_equivalent"], p["p_a_better"])
    rows = []
    for i, a in enumerate(order[:-1]):
        cells = []
        for j, b in enumerate(order[1:], start=1):
            better, same, worse = probs.get((a, b), (math.nan,) * 3)
            decision = "" if j <= i or math.isnan(better) else decide(better, same, worse)
            shown = {">": better, "<": worse, "≈": same}.get(decision)
            if decision == "?":
                cells.append(f"? {prob(better)} / {prob(same)} / {prob(worse)}")
            else:
                cells.append(f"{decision} {prob(shown)}" if decision else "")
        rows.append([a, *cells])
    return ["row (by mean rank) vs column", *order[1:]], rows
