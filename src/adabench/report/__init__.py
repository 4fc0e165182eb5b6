"""``adabench report``: tables, statistics and plots across the runs of one or more sweeps.

Reads every ``metrics.json`` below the given folders (failed and interrupted runs included),
writes ``results.csv`` (one row per run), ``summary.md`` (per task × loss: n, median,
mean ± std, IQR, a bootstrap 95% CI of the median, median train time; paired Wilcoxon tests of
every loss against a baseline on runs that share a seed; the failures) and PNG plots (box plot
of the metric by loss with the runs overlaid; ROC curves of each loss's median run).

The parts: :mod:`.collect` (rows), :mod:`.stats` (numbers), :mod:`.tables` (CSV, Markdown,
console), :mod:`.one_vs_rest` (its table), :mod:`.plots` (PNG), :mod:`.upload` (W&B).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from adabench.files import RESULT_FILE, write_json
from adabench.report.audit import audit_lines, audit_rows
from adabench.report.collect import METRIC_KEYS, TIME_KEYS, collect_runs, display_path
from adabench.report.delong import delong_against_baselines
from adabench.report.one_vs_rest import one_vs_rest_table
from adabench.report.plots import plot_boxes, plot_critical_difference, plot_roc
from adabench.report.stats import (
    AUTO,
    GroupStats,
    PairedTest,
    baseline_findings,
    better,
    bootstrap_median_ci,
    ceiling_notes,
    choose_baselines,
    paired_notes,
    paired_tests,
    summarize,
    tasks_at_ceiling,
)
from adabench.report.tables import (
    cross_task_table,
    pairs_table,
    print_tables,
    summary_tables,
    write_csv,
    write_summary,
)
from adabench.report.task_table import pair_matrix, task_matrix
from adabench.report.upload import log_to_wandb
from adabench.report.verdict import cross_task, pairs_in_tasks

__all__ = [
    "AUTO",
    "audit_rows",
    "METRIC_KEYS",
    "TIME_KEYS",
    "GroupStats",
    "PairedTest",
    "baseline_findings",
    "better",
    "bootstrap_median_ci",
    "choose_baselines",
    "collect_runs",
    "log_to_wandb",
    "main",
    "one_vs_rest_table",
    "paired_notes",
    "paired_tests",
    "plot_boxes",
    "plot_roc",
    "report",
    "summarize",
]


AUTO_METRICS = ("auroc", "test_accuracy", "knn_accuracy")  # --metric auto: the first any run has


def choose_metric(rows: Sequence[dict[str, Any]]) -> str:
    """The metric of ``--metric auto``: the first of ``AUTO_METRICS`` a completed run reports.

    ``auroc`` for anomaly and one-vs-rest sweeps; ``test_accuracy`` for a classification sweep
    (``knn_accuracy`` when only no-training rows ran).
    """
    for key in AUTO_METRICS:
        if any(r["status"] == "completed" and r.get(key) is not None for r in rows):
            return key
    return AUTO_METRICS[0]


def metric_notes(rows: Sequence[dict[str, Any]], metric: str, auto: bool) -> list[str]:
    """Which metric was chosen, and which completed rows lack it (and what they report)."""
    notes = (
        [f"--metric auto chose {metric}: no run reports auroc."]
        if auto and metric != "auroc"
        else []
    )
    lacking: dict[str, set[str]] = {}
    for r in rows:
        if r["status"] == "completed" and r.get(metric) is None:
            has = {k for k in METRIC_KEYS if r.get(k) is not None}
            lacking.setdefault(r["loss"], set()).update(has)
    for loss, has in sorted(lacking.items()):
        shown = ", ".join(sorted(has)) or "no metric"
        notes.append(
            f"{loss} has no {metric} (it reports {shown}), so it is not in the tables; "
            f"--metric {sorted(has)[0] if has else 'auroc'} compares it with the others."
        )
    return notes


def report(
    sweeps: Sequence[str | Path],
    out_dir: str | Path | None = None,
    baseline: str = AUTO,
    metric: str = AUTO,
    plots: bool = True,
    wandb: bool = False,
    quiet: bool = False,
    fix: bool = False,
    rope: float = 0.01,
) -> dict[str, Any]:
    """Build the report; returns the rows, statistics, tests and written files.

    Every completed run's detection metrics are recomputed from its ``scores.npz`` first (see
    :mod:`.audit`): rows whose ``metrics.json`` disagrees are listed and reported with the
    recomputed values; ``fix=True`` also writes those values to their ``metrics.json``.
    """
    if metric != AUTO and metric not in METRIC_KEYS:
        raise ValueError(f"metric must be auto or one of {', '.join(METRIC_KEYS)}, got {metric!r}.")
    variant_notes: list[str] = []
    rows = collect_runs(sweeps, variant_notes)
    if not rows:
        raise FileNotFoundError(f"No {RESULT_FILE} found below {', '.join(map(str, sweeps))}.")
    audit_notes: list[str] = []
    rows, corrections = audit_rows(rows, fix=fix, notes=audit_notes)
    auto, metric = metric == AUTO, choose_metric(rows) if metric == AUTO else metric
    out = Path(out_dir) if out_dir else Path(sweeps[0])
    out.mkdir(parents=True, exist_ok=True)
    stats = summarize(rows, metric)
    chosen = choose_baselines(stats, baseline, metric)
    at_ceiling = tasks_at_ceiling(rows, metric)
    tested = [r for r in rows if (r.get("task") or r["dataset"]) not in at_ceiling]
    tests = paired_tests(tested, baseline, metric, chosen)
    failures = [r for r in rows if r["status"] != "completed"]
    tables = summary_tables(stats, tests, failures, metric)
    ran = {
        r.get("task") or r["dataset"]
        for r in rows
        if r["status"] == "completed" and r["baseline"] and r.get(metric) is None
    }
    tables["audit"] = audit_lines(corrections, fixed=fix)
    tables["unchecked"] = audit_notes
    tables["findings"] = (
        ceiling_notes(at_ceiling, metric)
        + metric_notes(rows, metric, auto)
        + baseline_findings(stats, metric, ran)
    )
    tables["one_vs_rest"] = one_vs_rest_table(rows, metric)
    tables["paired_notes"] = paired_notes(chosen, stats, baseline)
    tables["variants"] = variant_notes
    pairs = pairs_in_tasks(tested, metric)
    tables["pairs"] = pairs_table(pairs)
    tables["task_matrix"] = task_matrix(stats, metric)
    tables["delong"] = (
        [
            "task",
            "loss",
            "baseline",
            "seeds",
            "significantly better",
            "significantly worse",
            "median p",
        ],
        delong_against_baselines(tested, chosen),
    )
    verdict, ranked = cross_task(tested, metric, rope)
    tables["verdict"] = verdict.verdict
    tables["cross_task"] = cross_task_table(verdict)
    tables["pair_matrix"] = pair_matrix(verdict)
    write_json(
        out / "stats.json", {**verdict.as_json(), "pairs_in_tasks": [asdict(p) for p in pairs]}
    )
    pngs = (plot_boxes(rows, out, metric) + plot_roc(rows, out, metric)) if plots else []
    cd_png = plot_critical_difference(ranked, out / f"cd_{metric}.png") if plots else None
    pngs = ([cd_png] if cd_png else []) + pngs
    write_csv(rows, out / "results.csv")
    write_summary(tables, out / "summary.md", metric, [display_path(s) for s in sweeps], pngs)
    if not quiet:
        print_tables(tables, metric)
        print(
            f"wrote {out / 'results.csv'}, {out / 'summary.md'}"
            + (f" and {len(pngs)} plots" if pngs else "")
        )
    if wandb:
        log_to_wandb(tables, out, pngs, [str(s) for s in sweeps])
    return {
        "rows": rows,
        "stats": stats,
        "tests": tests,
        "failures": failures,
        "corrections": corrections,
        "verdict": verdict,
        "pairs": pairs,
        "plots": pngs,
        "metric": metric,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """``adabench report`` / ``python -m adabench.report``."""
    p = argparse.ArgumentParser(
        prog="adabench report", description=__doc__.split("\n")[0].replace("``", "")
    )
    p.add_argument("sweeps", nargs="+", help="sweep folders (e.g. multirun/2026-11-23/10-00-00)")
    p.add_argument("--out", default=None, help="output folder (default: the first sweep folder)")
    p.add_argument(
        "--baseline",
        default=AUTO,
        help="row the others are paired with (default auto: the best no-training baseline of "
        "each dataset, else softmax)",
    )
    p.add_argument(
        "--metric",
        default=AUTO,
        choices=(AUTO, *METRIC_KEYS),
        help="metric of the tables and plots (default auto: auroc, or for classification "
        "sweeps test_accuracy)",
    )
    p.add_argument(
        "--rope",
        type=float,
        default=0.01,
        help="region of practical equivalence for the cross-task verdict, in the metric's "
        "units (default 0.01 AUROC)",
    )
    p.add_argument(
        "--no-plots", action="store_true", help="write no PNG plots (tables and stats only)"
    )
    p.add_argument("--wandb", action="store_true", help="log tables and plots to W&B")
    p.add_argument(
        "--fix",
        action="store_true",
        help="write metrics recomputed from scores.npz into the metrics.json files that "
        "disagree with them (the old values are kept under audit.previous)",
    )
    p.add_argument("--strict", action="store_true", help="exit 1 when any run failed")
    args = p.parse_args(argv)
    try:
        result = report(
            args.sweeps,
            args.out,
            args.baseline,
            args.metric,
            plots=not args.no_plots,
            wandb=args.wandb,
            fix=args.fix,
            rope=args.rope,
        )
    except (FileNotFoundError, ValueError) as err:
        p.error(str(err))
    return 1 if args.strict and result["failures"] else 0
