"""Statistics over collected rows: per-group summaries, bootstrap CIs, paired tests, findings."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import wilcoxon

from adabench.metrics import higher_is_better

DECIDED = 0.95  # a posterior probability at least this large decides a pair (cross-task)
AUTO = "auto"  # paired baseline: the best no-training baseline of each dataset, else softmax


def fmt(x: float | None, digits: int = 4) -> str:
    """``x`` with ``digits`` decimals, or ``–`` for a missing or NaN value."""
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def prob(p: float) -> str:
    """A probability rounded down to 2 decimals: 0.9499 reads 0.94, as it does not decide."""
    return f"{math.floor(p * 100 + 1e-9) / 100:.2f}"


def decide(p_better: float, p_equivalent: float, p_worse: float) -> str:
    """``>`` / ``<`` (the first / second is better), ``≈`` (equivalent) or ``?`` (undecided)."""
    for mark, p in ((">", p_better), ("<", p_worse), ("≈", p_equivalent)):
        if p >= DECIDED:
            return mark
    return "?"


def bootstrap_median_ci(
    values: Sequence[float], level: float = 0.95, n_boot: int = 10_000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the median."""
    x = np.asarray(values, dtype=float)
    if len(x) == 0:
        return math.nan, math.nan
    if len(x) == 1:
        return float(x[0]), float(x[0])
    rng = np.random.default_rng(seed)
    medians = np.median(x[rng.integers(0, len(x), size=(n_boot, len(x)))], axis=1)
    alpha = (1 - level) / 2
    return float(np.quantile(medians, alpha)), float(np.quantile(medians, 1 - alpha))


@dataclass
class GroupStats:
    """Summary of one dataset × loss."""

    dataset: str
    loss: str
    n: int
    median: float
    mean: float
    std: float
    iqr: float
    ci_low: float
    ci_high: float
    median_train_s: float
    baseline: bool = False
    val_median: float = math.nan  # the same metric on the validation parts (what tuning saw)


def summarize(rows: Sequence[dict], metric: str = "auroc") -> list[GroupStats]:
    """Per task × loss statistics of ``metric`` over completed runs."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in rows:
        if r["status"] == "completed" and r.get(metric) is not None:
            groups[(r.get("task") or r["dataset"], r["loss"])].append(r)
    out = []
    for (ds, loss), rs in sorted(groups.items()):
        x = np.array([r[metric] for r in rs], dtype=float)
        q1, q3 = np.percentile(x, [25, 75])
        lo, hi = bootstrap_median_ci(x)
        train = [r["train_s"] for r in rs if r.get("train_s") is not None]
        val = [r[f"val_{metric}"] for r in rs if r.get(f"val_{metric}") is not None]
        out.append(
            GroupStats(
                ds,
                loss,
                len(x),
                float(np.median(x)),
                float(x.mean()),
                float(x.std(ddof=1)) if len(x) > 1 else 0.0,
                float(q3 - q1),
                lo,
                hi,
                float(np.median(train)) if train else math.nan,
                any(r.get("baseline") for r in rs),
                float(np.median(val)) if val else math.nan,
            )
        )
    return out


@dataclass
class PairedTest:
    """One loss against the baseline on the seeds both completed."""

    dataset: str
    loss: str
    baseline: str
    n_pairs: int
    median_diff: float
    win_rate: float
    p_value: float


def better(metric: str, a: float, b: float) -> bool:
    """Whether value ``a`` of ``metric`` is better than ``b`` (lower FPR is better)."""
    return a > b if higher_is_better(metric) else a < b


def choose_baselines(
    stats: Sequence[GroupStats], baseline: str = AUTO, metric: str = "auroc"
) -> dict[str, str | None]:
    """The comparison row of each dataset.

    ``auto``: the no-training baseline with the best median, else ``softmax``; any other name
    is used where that loss ran. ``None`` where there is nothing to compare with.
    """
    out: dict[str, str | None] = {}
    for ds in sorted({s.dataset for s in stats}):
        rows = [s for s in stats if s.dataset == ds]
        names = {s.loss for s in rows}
        if baseline != AUTO:
            out[ds] = baseline if baseline in names else None
            continue
        candidates = [s for s in rows if s.baseline]
        best = None
        for s in candidates:
            if best is None or better(metric, s.median, best.median):
                best = s
        out[ds] = best.loss if best else ("softmax" if "softmax" in names else None)
    return out


def paired_tests(
    rows: Sequence[dict],
    baseline: str = AUTO,
    metric: str = "auroc",
    chosen: dict[str, str | None] | None = None,
) -> list[PairedTest]:
    """Wilcoxon signed-rank test of each loss against the baseline row, paired by seed.

    The difference is signed so that > 0 favours the loss (for FPR@95%TPR, lower is better).
    ``p_value`` is NaN when there are no pairs or every difference is zero. ``chosen``: the
    comparison row per dataset when the caller already has it (:func:`choose_baselines`).
    """
    sign = 1.0 if higher_is_better(metric) else -1.0
    by: dict[tuple[str, str], dict[Any, float]] = defaultdict(dict)
    for r in rows:
        if r["status"] == "completed" and r.get(metric) is not None:
            key = (r["backbone"], r["seed"], r.get("normal", ""))  # one-vs-rest: per class too
            by[(r.get("task") or r["dataset"], r["loss"])][key] = float(r[metric])
    if chosen is None:
        chosen = choose_baselines(summarize(rows, metric), baseline, metric)
    out = []
    for (ds, loss), values in sorted(by.items()):
        ref = chosen.get(ds)
        base = by.get((ds, ref)) if ref else None
        if loss == ref or base is None:
            continue
        keys = sorted(set(values) & set(base), key=str)
        diff = sign * np.array([values[k] - base[k] for k in keys])
        p = math.nan if len(diff) == 0 or np.all(diff == 0) else float(wilcoxon(diff).pvalue)
        out.append(
            PairedTest(
                ds,
                loss,
                str(ref),
                len(diff),
                float(np.median(diff)) if len(diff) else math.nan,
                float(np.mean(diff > 0)) if len(diff) else math.nan,
                p,
            )
        )
    return out


def paired_notes(
    chosen: dict[str, str | None], stats: Sequence[GroupStats], baseline: str = AUTO
) -> list[str]:
    """One sentence per dataset: what each loss is paired against, or why nothing is."""
    kinds = {(s.dataset, s.loss): s.baseline for s in stats}
    lines = []
    for ds, ref in chosen.items():
        if ref is None:
            wanted = (
                "no no-training baseline and no softmax run"
                if baseline == AUTO
                else f"no '{baseline}' run"
            )
            lines.append(
                f"{ds}: {wanted} to pair with, so no paired tests; add "
                "loss=baseline_pixels,baseline_features (or softmax) to the sweep, or pass "
                "--baseline <a loss that ran>."
            )
        elif not any(d == ds and loss != ref for d, loss in kinds):
            lines.append(f"{ds}: only {ref} ran, so there is nothing to pair with it.")
        elif kinds.get((ds, ref)):
            how = "the best no-training baseline" if baseline == AUTO else "chosen with --baseline"
            lines.append(f"{ds}: every row is paired with {ref} ({how}).")
        else:
            how = (
                "no no-training row with this metric"
                if baseline == AUTO
                else "chosen with --baseline"
            )
            lines.append(f"{ds}: every loss is paired with {ref} ({how}).")
    return lines


def baseline_findings(
    stats: Sequence[GroupStats], metric: str = "auroc", ran: Collection[str] = ()
) -> list[str]:
    """Plain sentences: which trained losses' medians fall below a no-training baseline.

    ``ran``: datasets whose no-training rows completed without ``metric`` (said elsewhere),
    which get no advice to add them.
    """
    lines = []
    for ds in sorted({s.dataset for s in stats}):
        rows = [s for s in stats if s.dataset == ds]
        bases = sorted((s for s in rows if s.baseline), key=lambda s: s.loss)
        trained = [s for s in rows if not s.baseline]
        if not bases:
            if ds not in ran:
                lines.append(
                    f"{ds}: no no-training baseline with {metric}; add loss=baseline_pixels,"
                    "baseline_features to the sweep to see whether training beats k-NN on "
                    "pixels or features."
                )
            continue
        for b in bases:
            below = [s for s in trained if better(metric, b.median, s.median)]
            if below:
                names = ", ".join(f"{s.loss} ({fmt(s.median)})" for s in below)
                lines.append(
                    f"{ds}: **below {b.loss}** (median {fmt(b.median)}, no training): {names}."
                )
            elif trained:
                lines.append(f"{ds}: every trained loss's median beats {b.loss} ({fmt(b.median)}).")
    return lines


def tasks_at_ceiling(rows: Sequence[dict], metric: str) -> list[str]:
    """Tasks whose every completed run scores the metric's best value (AUROC 1.0).

    Their rows cannot be told apart: a paired test or a verdict there can only say "tied",
    so the report says so and leaves them out of the tests.
    """
    from adabench.metrics import ceiling

    best = ceiling(metric)
    if best is None:
        return []
    values: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        if r["status"] == "completed" and r.get(metric) is not None:
            values[r.get("task") or r["dataset"]].append(float(r[metric]))
    return sorted(t for t, v in values.items() if v and all(x == best for x in v))


def ceiling_notes(tasks: Sequence[str], metric: str) -> list[str]:
    """One sentence per task at the ceiling: why its tests are skipped, and what to do."""
    from adabench.metrics import ceiling

    return [
        f"{task}: every run scores {metric} = {ceiling(metric):.4f}, the metric's ceiling, so "
        "the rows cannot be told apart here; its paired tests and verdict are skipped. A "
        "harder task (other classes, fewer training images) can show a difference."
        for task in tasks
    ]
