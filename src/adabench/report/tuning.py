"""Paper defaults against equal-budget tuning: the three questions a tuned study must answer.

1. Does tuning change the ranking? (:func:`ranking_change`: both orders and Kendall's tau.)
2. Does a tuned loss beat the best no-training baseline, paired over every seed?
   (:func:`against_baseline`: wins by seed, paired t-test with Holm over the losses, and DeLong's
   test run by run on the same test images.)
3. How far did the tuned parameters move from the defaults? (:func:`parameter_moves`.)

And two the issue left open: did tuning help each loss, paired by seed (:func:`tuning_effect`:
better, worse, equivalent within a ROPE, or undecided), and what could pruning have saved
(:func:`pruning_bound`)?

Pure functions of report rows (``adabench.report``'s rows or a ``results.csv`` read back).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import kendalltau
from scipy.stats import t as student_t

from adabench.report.delong import delong_against_baselines
from adabench.report.verdict import by_task, holm, paired_t_p


def _label(loss: Any) -> str:
    """A row's loss without its ``(key=value)`` variant suffix."""
    return str(loss).split(" (")[0]


def medians(rows: Sequence[Mapping[str, Any]], metric: str = "auroc") -> dict[str, float]:
    """Row label (a loss, without a ``(key=value)`` variant suffix) → median over completed runs."""
    values: dict[str, list[float]] = {}
    for r in rows:
        value = r.get(metric)
        if r.get("status") == "completed" and value not in (None, ""):
            values.setdefault(_label(r["loss"]), []).append(float(value))
    return {k: float(np.median(v)) for k, v in sorted(values.items())}


@dataclass(frozen=True)
class RankingChange:
    """The losses ordered best first under the defaults and after tuning."""

    defaults: tuple[str, ...]
    tuned: tuple[str, ...]
    kendall_tau: float

    @property
    def changed(self) -> bool:
        return self.defaults != self.tuned


def ranking_change(
    defaults: Mapping[str, float], tuned: Mapping[str, float], losses: Sequence[str]
) -> RankingChange:
    """Order ``losses`` by median under both; tau = 1 means the same order."""
    both = [x for x in losses if x in defaults and x in tuned]
    if len(both) < 2:
        raise ValueError(f"ranking_change needs ≥ 2 losses in both tables, got {both}.")
    order_d = tuple(sorted(both, key=lambda x: -defaults[x]))
    order_t = tuple(sorted(both, key=lambda x: -tuned[x]))
    tau = kendalltau([defaults[x] for x in both], [tuned[x] for x in both]).statistic
    return RankingChange(order_d, order_t, float(tau))


@dataclass(frozen=True)
class AgainstBaseline:
    """A tuned loss paired by seed with the best no-training baseline (diff > 0: the loss)."""

    loss: str
    baseline: str
    seeds: int
    wins: int
    mean_diff: float
    p_t_holm: float
    delong_better: int
    delong_worse: int

    @property
    def beats(self) -> bool:
        """Better on every seed, the paired t-test significant after Holm (p < 0.05)."""
        return self.seeds > 1 and self.wins == self.seeds and self.p_t_holm < 0.05


def against_baseline(
    rows: Sequence[Mapping[str, Any]], losses: Sequence[str], baseline: str, metric: str = "auroc"
) -> list[AgainstBaseline]:
    """Each loss against ``baseline`` on the seeds both completed (one task's rows)."""
    tasks = by_task(rows, metric)
    if len(tasks) != 1:
        raise ValueError(f"against_baseline compares within one task, got {sorted(tasks)}.")
    ((task, by),) = tasks.items()
    if baseline not in by:
        raise ValueError(f"baseline {baseline!r} has no completed run; rows: {sorted(by)}.")
    found, p_values = [], []
    for loss in (x for x in losses if x in by):
        seeds = sorted(set(by[loss]) & set(by[baseline]), key=str)
        d = np.array([by[loss][s] - by[baseline][s] for s in seeds])
        p = paired_t_p(d)
        found.append((loss, len(d), int((d > 0).sum()), float(d.mean()) if len(d) else math.nan))
        p_values.append(p)
    delong = {
        row[1]: (int(row[4]), int(row[5]))
        for row in delong_against_baselines(list(rows), {task: baseline})
    }
    return [
        AgainstBaseline(loss, baseline, n, wins, diff, p, *delong.get(loss, (0, 0)))
        for (loss, n, wins, diff), p in zip(found, holm(p_values), strict=True)
    ]


def parameter_moves(best: Mapping[str, Any], defaults: Mapping[str, Any]) -> list[str]:
    """``key: default → tuned`` for each tuned parameter, with the factor for numbers."""
    moves = []
    for key, value in best.items():
        old = defaults.get(key)
        if old == value:
            moves.append(f"{key}: {value} (unchanged)")
        elif isinstance(value, int | float) and isinstance(old, int | float) and old:
            moves.append(f"{key}: {old:.4g} → {value:.4g} (×{value / old:.2g})")
        else:
            moves.append(f"{key}: {old} → {value}")
    return moves


@dataclass(frozen=True)
class TuningEffect:
    """Tuned minus defaults for one loss, paired by seed (diff > 0: tuning helped)."""

    loss: str
    seeds: int
    improved: int
    mean_diff: float
    ci90: tuple[float, float]
    p_t_holm: float
    rope: float

    @property
    def verdict(self) -> str:
        """``better`` or ``worse`` (paired t, Holm, p < 0.05), ``equivalent``, else ``undecided``.

        ``equivalent`` is TOST at 5 %: the 90 % CI of the mean difference lies inside ±rope.
        A large p-value alone never reads as "the same".
        """
        if self.p_t_holm < 0.05:
            return "better" if self.mean_diff > 0 else "worse"
        if -self.rope < self.ci90[0] and self.ci90[1] < self.rope:
            return "equivalent"
        return "undecided"


def tuning_effect(
    defaults: Sequence[Mapping[str, Any]],
    tuned: Sequence[Mapping[str, Any]],
    losses: Sequence[str],
    metric: str = "auroc",
    rope: float = 0.01,
) -> list[TuningEffect]:
    """Each loss's tuned runs against its default runs on the seeds both completed."""

    def by_seed(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for r in rows:
            if r.get("status") == "completed" and r.get(metric) not in (None, ""):
                out.setdefault(_label(r["loss"]), {})[str(r["seed"])] = float(r[metric])
        return out

    before, after = by_seed(defaults), by_seed(tuned)
    found, p_values = [], []
    for loss in (x for x in losses if x in before and x in after):
        seeds = sorted(set(before[loss]) & set(after[loss]))
        d = np.array([after[loss][s] - before[loss][s] for s in seeds])
        p, ci = paired_t_p(d), (math.nan, math.nan)
        if not math.isnan(p):  # the 90 % t interval of the mean difference
            half = float(student_t.ppf(0.95, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d)))
            ci = (d.mean() - half, d.mean() + half)
        mean = float(d.mean()) if len(d) else math.nan
        found.append((loss, len(d), int((d > 0).sum()), mean, ci))
        p_values.append(p)
    return [
        TuningEffect(loss, n, up, diff, (float(ci[0]), float(ci[1])), p, rope)
        for (loss, n, up, diff, ci), p in zip(found, holm(p_values), strict=True)
    ]


@dataclass(frozen=True)
class Trial:
    """One finished trial of a study, as its run recorded it."""

    started_at: str
    epochs: int
    train_s: float
    total_s: float
    value: float


def pruning_bound(trials: Sequence[Trial], startup: int = 5) -> float:
    """The share of a study's run time an ideal median pruner could have saved (an upper bound).

    Optuna's ``MedianPruner`` stops a trial whose intermediate value falls below the median of
    the earlier trials' values at the same step, after ``startup`` trials. Here it is given an
    oracle: the first epoch already ranks as the final value does, so a trial whose final value
    is below the median of the earlier finals is stopped after one epoch and saves the training
    time of its remaining epochs (its run time otherwise counted in full). A real pruner judges
    on noisier first-epoch values and must also validate every epoch, so it saves less.
    """
    if not trials:
        raise ValueError("pruning_bound needs at least one finished trial.")
    ordered = sorted(trials, key=lambda t: t.started_at)
    saved, seen = 0.0, []
    for t in ordered:
        if len(seen) >= startup and t.value < float(np.median(seen)) and t.epochs > 1:
            saved += t.train_s * (t.epochs - 1) / t.epochs
        seen.append(t.value)
    return saved / sum(t.total_s for t in ordered)
