"""One line per task, one column per row: the suite at a glance (summary.md, multi-task sweeps)."""

from __future__ import annotations

from collections.abc import Sequence

from adabench.metrics import higher_is_better
from adabench.report.stats import GroupStats, fmt


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
