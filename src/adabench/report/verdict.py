"""Statistics that can say "better", "worse" or "the same", per task and across tasks.

- **Per task**, every pair of rows is compared by seed: the paired t-test (it can reach
  significance with few seeds) and the exact Wilcoxon signed-rank test (whose smallest possible
  p, 2/2ⁿ for n seeds, is printed with the seed count that 0.05 needs), Holm-corrected over the
  task's pairs.
- **Per run**, DeLong's test compares a loss with the best no-training baseline on the same
  test images, seed by seed (:mod:`.delong`).
- **Across tasks** (libraries made for it): ``autorank`` for the mean ranks, the Friedman test,
  the Nemenyi post-hoc test and the critical-difference diagram (Demšar 2006); ``baycomp``'s
  Bayesian signed-rank test (Benavoli et al. 2017) for P(A better), P(equivalent within the
  ROPE) and P(B better) of every pair; the aggregate (mean of task means, and the IQM of all
  runs) with a bootstrap CI stratified by task (Agarwal et al. 2021's rliable recipe: seeds are
  resampled within each task; written here as rliable pins an old ``arch``).
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy.stats import ttest_rel, wilcoxon

from adabench.metrics import higher_is_better
from adabench.report.stats import DECIDED, decide, prob

MIN_TASKS = 5  # autorank's Friedman / Nemenyi need five performance estimates per row


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment (NaN stays NaN)."""
    p = np.asarray(p_values, float)
    ok = ~np.isnan(p)
    out = np.full(len(p), math.nan)
    order = np.argsort(p[ok])
    adjusted = np.minimum(
        1.0, np.maximum.accumulate(p[ok][order] * (ok.sum() - np.arange(ok.sum())))
    )
    out[np.flatnonzero(ok)[order]] = adjusted
    return out.tolist()


def paired_t_p(d: np.ndarray) -> float:
    """Paired t-test p of differences ``d`` against 0 (NaN: < 2 pairs or constant ``d``)."""
    varied = len(d) > 1 and np.ptp(d) > 0
    return float(ttest_rel(d, np.zeros_like(d)).pvalue) if varied else math.nan


def min_wilcoxon_p(n: int) -> float:
    """The smallest two-sided p the exact signed-rank test can give with ``n`` pairs: 2/2ⁿ."""
    return 2.0 / 2**n if n else math.nan


def seeds_needed(comparisons: int, alpha: float = 0.05) -> int:
    """Seeds the exact signed-rank test needs to reach ``alpha`` after Holm's correction."""
    n = 1
    while min_wilcoxon_p(n) * max(1, comparisons) > alpha:
        n += 1
    return n


@dataclass
class PairInTask:
    """Rows ``a`` and ``b`` of one task, paired by seed (difference > 0 favours ``a``)."""

    task: str
    a: str
    b: str
    n: int
    mean_diff: float
    p_t: float
    p_wilcoxon: float
    p_t_holm: float = math.nan
    p_wilcoxon_holm: float = math.nan
    min_p_wilcoxon: float = math.nan
    seeds_for_05: int = 0


def by_task(rows: Sequence[dict], metric: str) -> dict[str, dict[str, dict[Any, float]]]:
    """Task → row (loss label) → seed → value, over completed runs."""
    out: dict[str, dict[str, dict[Any, float]]] = defaultdict(lambda: defaultdict(dict))
    for r in rows:
        if r["status"] == "completed" and r.get(metric) is not None:
            out[r.get("task") or r["dataset"]][str(r["loss"])][r["seed"]] = float(r[metric])
    return out


def pairs_in_tasks(rows: Sequence[dict], metric: str = "auroc") -> list[PairInTask]:
    """Every pair of rows within each task, by seed, with Holm over the task's pairs."""
    sign = 1.0 if higher_is_better(metric) else -1.0
    out = []
    for task, losses in sorted(by_task(rows, metric).items()):
        found = []
        for a, b in itertools.combinations(sorted(losses), 2):
            seeds = sorted(set(losses[a]) & set(losses[b]), key=str)
            d = sign * np.array([losses[a][s] - losses[b][s] for s in seeds])
            p_t = paired_t_p(d)
            p_w = float(wilcoxon(d).pvalue) if len(d) and np.any(d != 0) else math.nan
            found.append(
                PairInTask(
                    task,
                    a,
                    b,
                    len(d),
                    float(d.mean()) if len(d) else math.nan,
                    p_t,
                    p_w,
                    min_p_wilcoxon=min_wilcoxon_p(len(d)),
                )
            )
        for pair, pt, pw in zip(
            found, holm([f.p_t for f in found]), holm([f.p_wilcoxon for f in found]), strict=True
        ):
            pair.p_t_holm, pair.p_wilcoxon_holm = pt, pw
            pair.seeds_for_05 = seeds_needed(len(found))
        out += found
    return out


@dataclass
class CrossTask:
    """The verdict across tasks (``stats.json``)."""

    metric: str
    rope: float
    tasks: list[str]
    losses: dict[str, dict[str, float]] = field(default_factory=dict)
    friedman_p: float = math.nan
    critical_difference: float = math.nan
    pairs: list[dict[str, Any]] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)
    verdict: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _stratified_ci(per_task: list[np.ndarray], stat: Any, n_boot: int = 2000, seed: int = 0):
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_boot):
        draws.append(stat([v[rng.integers(0, len(v), len(v))] for v in per_task]))
    return float(np.quantile(draws, 0.025)), float(np.quantile(draws, 0.975))


def _iqm(per_task: list[np.ndarray]) -> float:
    x = np.sort(np.concatenate(per_task))
    cut = int(np.floor(0.25 * len(x)))
    return float(x[cut : len(x) - cut].mean()) if len(x) > 2 * cut else float(x.mean())


def _mean_of_means(per_task: list[np.ndarray]) -> float:
    return float(np.mean([v.mean() for v in per_task]))


def cross_task(
    rows: Sequence[dict], metric: str = "auroc", rope: float = 0.01
) -> tuple[CrossTask, Any]:
    """Mean ranks, Friedman + Nemenyi, aggregates with CIs and P(better/equivalent/worse).

    Rows present in fewer than all tasks are left out (``left_out``); under :data:`MIN_TASKS`
    tasks it says so. Returns it and autorank's result (for the CD diagram, or ``None``).
    """
    import baycomp
    import pandas as pd
    from autorank import autorank

    data = by_task(rows, metric)
    tasks = sorted(data)
    every = sorted(set.intersection(*(set(v) for v in data.values()))) if data else []
    result = CrossTask(metric, rope, tasks)
    result.left_out = sorted({name for v in data.values() for name in v} - set(every))
    if len(tasks) < MIN_TASKS or len(every) < 2:
        result.verdict = [
            f"A cross-task verdict needs at least {MIN_TASKS} tasks and 2 rows that ran on all "
            f"of them; this report has {len(tasks)} task(s) and {len(every)} such row(s). Run a "
            "task suite (e.g. experiment=suite_cifar10_pairs) for one."
        ]
        return result, None
    table = pd.DataFrame(
        {name: [np.mean(list(data[t][name].values())) for t in tasks] for name in every},
        index=tasks,
    )
    order = "descending" if higher_is_better(metric) else "ascending"
    ranked = autorank(table, alpha=0.05, verbose=False, order=order, force_mode="nonparametric")
    result.friedman_p = float(ranked.pvalue)
    result.critical_difference = float(ranked.cd) if ranked.cd is not None else math.nan
    runs = min(len(data[t][name]) for t in tasks for name in every)  # equal runs per task:
    for name in every:  # the stratified bootstrap and the pooled IQM assume them
        by_seed = [data[t][name] for t in tasks]
        per_task = [np.array([v[k] for k in sorted(v)][:runs]) for v in by_seed]
        lo, hi = _stratified_ci(per_task, _mean_of_means)
        iqm_lo, iqm_hi = _stratified_ci(per_task, _iqm)
        result.losses[name] = {
            "mean_rank": float(ranked.rankdf.loc[name, "meanrank"]),
            "mean": _mean_of_means(per_task),
            "mean_ci": [lo, hi],
            "iqm": _iqm(per_task),
            "iqm_ci": [iqm_lo, iqm_hi],
            "runs_per_task": min(len(v) for v in per_task),
        }
    sign = 1.0 if higher_is_better(metric) else -1.0
    for a, b in itertools.combinations(every, 2):
        x, y = sign * table[a].to_numpy(), sign * table[b].to_numpy()
        p_a, p_eq, p_b = baycomp.two_on_multiple(x, y, rope=rope, nsamples=20000, random_state=0)
        result.pairs.append(
            {
                "a": a,
                "b": b,
                "n_tasks": len(tasks),
                "p_a_better": float(p_a),
                "p_equivalent": float(p_eq),
                "p_b_better": float(p_b),
            }
        )
    result.verdict = verdict_lines(result)
    return result, ranked


def verdict_lines(result: CrossTask) -> list[str]:
    """The verdict in plain words: better, equivalent within the ROPE, or undecided."""
    better, same, open_ = [], [], []
    for p in result.pairs:
        a, b, p_a, p_b = p["a"], p["b"], p["p_a_better"], p["p_b_better"]
        if p_b > p_a:  # the likelier winner named first
            a, b, p_a, p_b = b, a, p_b, p_a
        probs = (
            f"P({a} better) = {prob(p_a)}, P(equivalent) = {prob(p['p_equivalent'])}, "
            f"P({b} better) = {prob(p_b)}"
        )
        decision = decide(p_a, p["p_equivalent"], p_b)  # never "<": the winner comes first
        if decision == ">":
            better.append(f"{a} is better than {b} ({probs}).")
        elif decision == "≈":
            same.append(f"{a} and {b} are equivalent within ±{result.rope:g} ({probs}).")
        else:
            open_.append(f"{a} vs {b}: the data cannot decide ({probs}).")
    head = (
        f"Across {len(result.tasks)} tasks (Friedman p = {result.friedman_p:.3g}; a pair is "
        f"decided at posterior probability ≥ {DECIDED:g}, ROPE ±{result.rope:g} "
        f"{result.metric}):"
    )
    one_run = min((v["runs_per_task"] for v in result.losses.values()), default=0) == 1
    note = "One run per task: the CIs resample seeds within each task, so they have no width."
    return [head, *better, *same, *open_, *([f"{note} Run more seeds for them."] * one_run)]
