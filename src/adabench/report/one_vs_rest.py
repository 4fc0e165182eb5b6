"""The one-vs-rest table of the report: per loss, each class in turn as the normal one."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from adabench.report.stats import fmt


def one_vs_rest_table(
    rows: Sequence[dict], metric: str = "auroc"
) -> tuple[list[str], list[list[str]]]:
    """The anomaly-detection papers' table: ``metric`` per loss and normal class, and the mean.

    Each cell is the median over seeds with that class as the normal one; empty without
    one-vs-rest runs.
    """
    cells: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if (
            r.get("protocol") == "one_vs_rest"
            and r["status"] == "completed"
            and r.get(metric) is not None
        ):
            cells[(r["dataset"], r["loss"])][r.get("normal", "")].append(float(r[metric]))
    classes = sorted({c for per in cells.values() for c in per}, key=_class_key)
    out = []
    for (ds, loss), per in sorted(cells.items()):
        medians = {c: float(np.median(v)) for c, v in per.items()}
        mean = float(np.mean(list(medians.values())))
        complete = len(medians) == len(classes)
        out.append(
            [
                ds,
                loss,
                *[fmt(medians.get(c)) for c in classes],
                fmt(mean) + ("" if complete else "*"),
            ]
        )
    return ["dataset", "loss", *classes, "mean"], out


def _class_key(name: str) -> tuple[int, str]:
    return (0, f"{int(name):09d}") if name.isdigit() else (1, name)
