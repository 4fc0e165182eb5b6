"""The report as tables: results.csv, summary.md and the console."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from adabench.files import atomic_write
from adabench.report.collect import METRIC_KEYS, TIME_KEYS, VALIDATION_KEYS
from adabench.report.stats import GroupStats, PairedTest, fmt
from adabench.report.task_table import PAIR_MATRIX_NOTE


def write_csv(rows: Sequence[dict], path: Path) -> None:
    """``results.csv``: one row per run."""
    fields = [
        "dataset",
        "task",
        "loss",
        "baseline",
        "backbone",
        "seed",
        "status",
        *METRIC_KEYS,
        *VALIDATION_KEYS,
        *TIME_KEYS,
        "variant",
        "config_hash",
        "run_dir",
        "error",
    ]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(path, lambda tmp: tmp.write_text(buf.getvalue(), encoding="utf-8"))


def summary_tables(
    stats: Sequence[GroupStats], tests: Sequence[PairedTest], failures: Sequence[dict], metric: str
) -> dict[str, tuple[list[str], list[list[str]]]]:
    """Headers and rows of the summary, the paired tests and the failures."""
    s_rows = [
        [
            s.dataset,
            f"{s.loss} (no training)" if s.baseline else s.loss,
            str(s.n),
            fmt(s.median),
            fmt(s.val_median),
            f"{fmt(s.mean)} ± {fmt(s.std)}",
            fmt(s.iqr),
            f"[{fmt(s.ci_low)}, {fmt(s.ci_high)}]",
            fmt(s.median_train_s, 1),
        ]
        for s in stats
    ]
    t_rows = [
        [
            t.dataset,
            f"{t.loss} vs {t.baseline}",
            str(t.n_pairs),
            f"{t.median_diff:+.4f}",
            fmt(t.win_rate, 2),
            fmt(t.p_value),
        ]
        for t in tests
    ]
    f_rows = [
        [
            r.get("task") or r["dataset"],
            str(r["loss"]),
            str(r["seed"]),
            r["status"],
            " ".join((r["error"] or "").split()),  # whole: the end of a reason is its fix
            r["run_dir"],
        ]
        for r in failures
    ]
    return {
        "summary": (
            [
                "task",
                "loss",
                "n",
                f"median {metric}",
                "median validation",
                "mean ± std",
                "IQR",
                "95% CI of median",
                "median train s",
            ],
            s_rows,
        ),
        "paired": (
            ["task", "comparison", "pairs", "median diff", "win rate", "Wilcoxon p"],
            t_rows,
        ),
        "failures": (["task", "loss", "seed", "status", "reason", "run"], f_rows),
    }


def pairs_table(pairs: Sequence[Any]) -> tuple[list[str], list[list[str]]]:
    """Every pair of rows within a task, by seed (:func:`.verdict.pairs_in_tasks`)."""
    rows = [
        [
            p.task,
            f"{p.a} vs {p.b}",
            str(p.n),
            f"{p.mean_diff:+.4f}",
            fmt(p.p_t_holm),
            fmt(p.p_wilcoxon_holm),
            fmt(p.min_p_wilcoxon),
            str(p.seeds_for_05),
        ]
        for p in pairs
    ]
    headers = [
        "task",
        "pair (diff > 0 favours the first)",
        "seeds",
        "mean diff",
        "paired t p (Holm)",
        "Wilcoxon p (Holm)",
        "smallest Wilcoxon p possible",
        "seeds Wilcoxon needs for 0.05",
    ]
    return headers, rows


def cross_task_table(verdict: Any) -> tuple[list[str], list[list[str]]]:
    """Per row across tasks: mean rank, mean of task means and IQM with stratified CIs."""
    rows = [
        [
            name,
            f"{v['mean_rank']:.2f}",
            f"{v['mean']:.4f} [{v['mean_ci'][0]:.4f}, {v['mean_ci'][1]:.4f}]",
            f"{v['iqm']:.4f} [{v['iqm_ci'][0]:.4f}, {v['iqm_ci'][1]:.4f}]",
        ]
        for name, v in sorted(verdict.losses.items(), key=lambda kv: kv[1]["mean_rank"])
    ]
    return ["row", "mean rank (1 = best)", "mean of task means [95% CI]", "IQM [95% CI]"], rows


def _markdown(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    cells = [[c.replace("|", "\\|") for c in r] for r in rows]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in cells])


markdown_table = _markdown  # a Markdown table of headers and rows (adabench cost)


def write_summary(tables: dict, path: Path, metric: str, sources: Sequence[str], plots: list[str]):  # noqa: C901, E501 - one section per table, in order
    """``summary.md``."""
    parts = [f"# adabench report: {metric}", "", "Sweeps: " + ", ".join(f"`{s}`" for s in sources)]
    if tables.get("verdict"):
        parts += ["", "## Verdict across tasks", ""] + [f"- {v}" for v in tables["verdict"]]
        if tables.get("cross_task", ([], []))[1]:
            parts += ["", _markdown(*tables["cross_task"]), "", "Machine-readable: `stats.json`."]
        if tables.get("pair_matrix", ([], []))[1]:
            parts += ["", PAIR_MATRIX_NOTE, "", _markdown(*tables["pair_matrix"])]
    if tables.get("variants"):
        parts += ["", "## Rows that are configurations, not names", ""]
        parts += [f"- {v}" for v in tables["variants"]]
    if tables.get("audit"):
        head, *fixes = tables["audit"]
        parts += ["", "## Metrics recomputed from scores.npz", "", head, ""]
        parts += [f"- {line}" for line in fixes]
    if tables.get("unchecked"):
        parts += ["", "## Runs whose scores could not be checked", ""]
        parts += [f"- {line}" for line in tables["unchecked"]]
    if tables.get("task_matrix", ([], []))[1]:
        parts += ["", "## Every task at a glance", "", _markdown(*tables["task_matrix"])]
    parts += ["", "## Per task × loss (completed runs)", "", _markdown(*tables["summary"])]
    parts += [
        "",
        "## Against the no-training baselines",
        "",
        *[f"- {line}" for line in tables.get("findings", [])],
        "",
        "## Paired by seed against the baseline",
        "",
        *[f"- {line}" for line in tables.get("paired_notes", [])],
        "",
        "Median difference > 0 and win rate > 0.5 favour the loss (for FPR@95%TPR the "
        "difference is baseline − loss: lower is better); p from the two-sided Wilcoxon "
        "signed-rank test on the seeds both completed.",
    ]
    if tables["paired"][1]:
        parts += ["", _markdown(*tables["paired"])]
    if tables.get("pairs", ([], []))[1]:
        parts += [
            "",
            "## Every pair of rows within a task, by seed",
            "",
            "Holm-corrected over each task's pairs. The exact signed-rank test cannot go below "
            "2/2ⁿ with n seeds: the last column says how many seeds it needs for p < 0.05 "
            "after the correction; the paired t-test can reach it with fewer.",
            "",
            _markdown(*tables["pairs"]),
        ]
    if tables.get("delong", ([], []))[1]:
        parts += [
            "",
            "## Per run: DeLong's test against the baseline on the same test images",
            "",
            _markdown(*tables["delong"]),
        ]
    if tables.get("one_vs_rest", ([], []))[1]:
        parts += [
            "",
            "## One-vs-rest: each class in turn is normal, every other class abnormal",
            "",
            f"{metric} with the column's class as the normal one (median over seeds) and the "
            "mean over classes (* where a class is missing).",
            "",
            _markdown(*tables["one_vs_rest"]),
        ]
    if tables["failures"][1]:
        parts += ["", "## Runs not completed", "", _markdown(*tables["failures"])]
    if plots:
        parts += ["", "## Plots", ""] + [f"![{p}]({p})" for p in plots]
    text = "\n".join(parts) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def print_tables(tables: dict, metric: str) -> None:
    """Print the summary, paired tests and failures with rich."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:  # a file or a CI log: no terminal width to fit, print it whole
        console = Console(width=200)
    said = [*tables.get("audit", []), *tables.get("unchecked", []), *tables.get("variants", [])]
    for line in said + tables.get("verdict", []):
        console.print(line, soft_wrap=True)
    for key, title in (
        ("summary", f"{metric} per task × loss"),
        ("paired", "paired by seed vs baseline"),
        ("one_vs_rest", "one-vs-rest: each class in turn normal"),
        ("cross_task", "across tasks"),
        ("failures", "runs not completed (failed, interrupted or still running)"),
    ):
        headers, rows = tables.get(key, ([], []))
        if rows:  # an empty paired table is left out: its notes below say why
            t = Table(title=title)
            for i, h in enumerate(headers):
                t.add_column(h, no_wrap=i < 2)  # dataset and loss names are never cut
            for r in rows:
                t.add_row(*r)
            console.print(t)
        if key == "paired":  # what each dataset was paired with, or why nothing was
            for line in tables.get("paired_notes", []):
                console.print(f"  {line}", soft_wrap=True)
            for line in tables.get("findings", []):
                console.print(f"  {line.replace('**', '')}", soft_wrap=True)
