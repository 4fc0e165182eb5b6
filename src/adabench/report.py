"""``adabench report``: tables, statistics and plots across the runs of one or more sweeps.

Reads every ``metrics.json`` below the given folders (failed and interrupted runs included),
writes ``results.csv`` (one row per run), ``summary.md`` (per dataset × loss: n, median,
mean ± std, IQR, a bootstrap 95% CI of the median, median train time; paired Wilcoxon tests of
every loss against a baseline on runs that share a seed; the failures) and PNG plots (box plot
of the metric by loss with the runs overlaid; ROC curves of each loss's median run).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from adabench.io import RESULT_FILE, SCORES_FILE, atomic_write

METRIC_KEYS = ("auroc", "aupr", "fpr_at_95tpr", "nn_accuracy")
LOWER_IS_BETTER = frozenset({"fpr_at_95tpr"})
AUTO = "auto"  # paired baseline: the best no-training baseline of each dataset, else softmax
_PALETTE = ("C0", "C1", "C2", "C3", "C4", "C5", "C6", "C8", "C9")  # C7 (grey) marks baselines
TIME_KEYS = ("setup_s", "train_s", "embed_s", "score_s", "total_s")


# --------------------------------------------------------------------------- collection
def display_path(path: str | Path) -> str:
    """``path`` relative to the working directory when it lies below it, else absolute."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def dataset_label(record: dict) -> str:
    """The dataset a run belongs to (``folder`` runs are told apart by their root)."""
    name = record.get("dataset") or "?"
    if name == "folder":
        root = ((record.get("config") or {}).get("dataset") or {}).get("root") or ""
        return f"folder:{Path(str(root)).name}"
    return str(name)


def collect_runs(dirs: Iterable[str | Path]) -> list[dict[str, Any]]:
    """One flat row per ``metrics.json`` below ``dirs``; unreadable files become failed rows."""
    rows = []
    for d in dirs:
        d = Path(d)
        if not d.exists():
            raise FileNotFoundError(f"Sweep folder {d} does not exist.")
        for path in sorted(d.rglob(RESULT_FILE)):
            try:
                rec = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as err:
                rec = {"status": "failed", "error": {"message": f"unreadable {RESULT_FILE}: {err}"}}
            status = rec.get("status", "failed")
            if status == "running":
                status = "interrupted"  # a finished sweep never leaves a run running
            row: dict[str, Any] = {
                "run_dir": display_path(path.parent),
                "status": status,
                "loss": rec.get("loss"),
                "dataset": dataset_label(rec),
                "backbone": rec.get("backbone"),
                "seed": rec.get("seed"),
                "baseline": rec.get("baseline") or "",
                "config_hash": rec.get("config_hash"),
                "error": (rec.get("error") or {}).get("message", ""),
            }
            metrics = rec.get("metrics") or {}
            times = rec.get("times") or {}
            row.update({k: metrics.get(k) for k in METRIC_KEYS})
            row.update({k: times.get(k) for k in TIME_KEYS})
            rows.append(row)
    return rows


# --------------------------------------------------------------------------- statistics
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


def summarize(rows: Sequence[dict], metric: str = "auroc") -> list[GroupStats]:
    """Per dataset × loss statistics of ``metric`` over completed runs."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in rows:
        if r["status"] == "completed" and r.get(metric) is not None:
            groups[(r["dataset"], r["loss"])].append(r)
    out = []
    for (ds, loss), rs in sorted(groups.items()):
        x = np.array([r[metric] for r in rs], dtype=float)
        q1, q3 = np.percentile(x, [25, 75])
        lo, hi = bootstrap_median_ci(x)
        train = [r["train_s"] for r in rs if r.get("train_s") is not None]
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
    return a < b if metric in LOWER_IS_BETTER else a > b


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
    from scipy.stats import wilcoxon

    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    by: dict[tuple[str, str], dict[Any, float]] = defaultdict(dict)
    for r in rows:
        if r["status"] == "completed" and r.get(metric) is not None:
            by[(r["dataset"], r["loss"])][(r["backbone"], r["seed"])] = float(r[metric])
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
        elif kinds.get((ds, ref)):
            how = "the best no-training baseline" if baseline == AUTO else "chosen with --baseline"
            lines.append(f"{ds}: every row is paired with {ref} ({how}).")
        else:
            how = "no no-training baseline ran" if baseline == AUTO else "chosen with --baseline"
            lines.append(f"{ds}: every loss is paired with {ref} ({how}).")
    return lines


def baseline_findings(stats: Sequence[GroupStats], metric: str = "auroc") -> list[str]:
    """Plain sentences: which trained losses' medians fall below a no-training baseline."""
    lines = []
    for ds in sorted({s.dataset for s in stats}):
        rows = [s for s in stats if s.dataset == ds]
        bases = sorted((s for s in rows if s.baseline), key=lambda s: s.loss)
        trained = [s for s in rows if not s.baseline]
        if not bases:
            lines.append(
                f"{ds}: no no-training baseline ran; add loss=baseline_pixels,baseline_features "
                "to the sweep to see whether training beats k-NN on pixels or features."
            )
            continue
        for b in bases:
            below = [s for s in trained if better(metric, b.median, s.median)]
            if below:
                names = ", ".join(f"{s.loss} ({_f(s.median)})" for s in below)
                lines.append(
                    f"{ds}: **below {b.loss}** (median {_f(b.median)}, no training): {names}."
                )
            elif trained:
                lines.append(f"{ds}: every trained loss's median beats {b.loss} ({_f(b.median)}).")
    return lines


# --------------------------------------------------------------------------- outputs
def write_csv(rows: Sequence[dict], path: Path) -> None:
    """``results.csv``: one row per run."""
    fields = [
        "dataset",
        "loss",
        "baseline",
        "backbone",
        "seed",
        "status",
        *METRIC_KEYS,
        *TIME_KEYS,
        "config_hash",
        "run_dir",
        "error",
    ]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(path, lambda tmp: tmp.write_text(buf.getvalue(), encoding="utf-8"))


def _f(x: float, digits: int = 4) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def summary_tables(
    stats: Sequence[GroupStats], tests: Sequence[PairedTest], failures: Sequence[dict], metric: str
) -> dict[str, tuple[list[str], list[list[str]]]]:
    """Headers and rows of the summary, the paired tests and the failures."""
    s_rows = [
        [
            s.dataset,
            f"{s.loss} (no training)" if s.baseline else s.loss,
            str(s.n),
            _f(s.median),
            f"{_f(s.mean)} ± {_f(s.std)}",
            _f(s.iqr),
            f"[{_f(s.ci_low)}, {_f(s.ci_high)}]",
            _f(s.median_train_s, 1),
        ]
        for s in stats
    ]
    t_rows = [
        [
            t.dataset,
            f"{t.loss} vs {t.baseline}",
            str(t.n_pairs),
            f"{t.median_diff:+.4f}",
            _f(t.win_rate, 2),
            _f(t.p_value),
        ]
        for t in tests
    ]
    f_rows = [
        [
            r["dataset"],
            str(r["loss"]),
            str(r["seed"]),
            r["status"],
            (r["error"] or "").splitlines()[0][:160] if r["error"] else "",
            r["run_dir"],
        ]
        for r in failures
    ]
    return {
        "summary": (
            [
                "dataset",
                "loss",
                "n",
                f"median {metric}",
                "mean ± std",
                "IQR",
                "95% CI of median",
                "median train s",
            ],
            s_rows,
        ),
        "paired": (
            ["dataset", "comparison", "pairs", "median diff", "win rate", "Wilcoxon p"],
            t_rows,
        ),
        "failures": (["dataset", "loss", "seed", "status", "reason", "run"], f_rows),
    }


def _markdown(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def write_summary(tables: dict, path: Path, metric: str, sources: Sequence[str], plots: list[str]):
    """``summary.md``."""
    parts = [f"# adabench report: {metric}", "", "Sweeps: " + ", ".join(f"`{s}`" for s in sources)]
    parts += ["", "## Per dataset × loss (completed runs)", "", _markdown(*tables["summary"])]
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
        "",
        _markdown(*tables["paired"]),
    ]
    if tables["failures"][1]:
        parts += ["", "## Failed or interrupted runs", "", _markdown(*tables["failures"])]
    if plots:
        parts += ["", "## Plots", ""] + [f"![{p}]({p})" for p in plots]
    text = "\n".join(parts) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def plot_boxes(rows: Sequence[dict], out_dir: Path, metric: str) -> list[str]:
    """One PNG per dataset: box plot of ``metric`` by loss with every run overlaid."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    by_ds: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    no_training = {r["loss"] for r in rows if r.get("baseline")}
    for r in rows:
        if r["status"] == "completed" and r.get(metric) is not None:
            by_ds[r["dataset"]][r["loss"]].append(float(r[metric]))
    for ds, losses in sorted(by_ds.items()):
        sign = 1.0 if metric in LOWER_IS_BETTER else -1.0
        names = sorted(losses, key=lambda n: sign * float(np.median(losses[n])))
        fig, ax = plt.subplots(figsize=(1.3 * len(names) + 2, 4))
        box = ax.boxplot([losses[n] for n in names], showfliers=False, patch_artist=True)
        labels = [f"{n}\n(no training)" if n in no_training else n for n in names]
        ax.set_xticks(range(1, len(names) + 1), labels, rotation=30, ha="right")
        rng = np.random.default_rng(0)
        for i, n in enumerate(names, start=1):
            base = n in no_training
            box["boxes"][i - 1].set_facecolor("0.85" if base else "white")
            if base:  # a dashed line at each baseline's median across the plot
                ax.axhline(np.median(losses[n]), color="0.5", ls="--", lw=0.8, zorder=0)
            ax.scatter(
                i + rng.uniform(-0.12, 0.12, len(losses[n])),
                losses[n],
                s=14,
                alpha=0.7,
                color="0.4" if base else _PALETTE[i % len(_PALETTE)],
                zorder=3,
            )
        ax.set_ylabel(metric.upper())
        ax.set_title(f"{ds}: {metric} by loss")
        ax.grid(axis="y", alpha=0.3)
        written.append(_save_figure(fig, out_dir / f"box_{_safe(ds)}_{metric}.png"))
    return written


def plot_roc(rows: Sequence[dict], out_dir: Path, metric: str) -> list[str]:
    """One PNG per dataset: the ROC curve of each loss's median run (from ``scores.npz``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch
    from torchmetrics.functional.classification import binary_roc

    written = []
    by: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if r["status"] == "completed" and (Path(r["run_dir"]) / SCORES_FILE).exists():
            by[r["dataset"]][r["loss"]].append(r)
    for ds, losses in sorted(by.items()):
        fig, ax = plt.subplots(figsize=(5, 5))
        for loss, rs in sorted(losses.items()):
            rs = sorted(rs, key=lambda r: r[metric])
            median_run = rs[(len(rs) - 1) // 2]
            data = np.load(Path(median_run["run_dir"]) / SCORES_FILE)
            fpr, tpr, _ = binary_roc(
                torch.as_tensor(data["score"], dtype=torch.float64),
                torch.as_tensor(data["is_abnormal"]).long(),
            )
            ax.plot(fpr.numpy(), tpr.numpy(), label=f"{loss} (AUROC {median_run['auroc']:.3f})")
        ax.plot([0, 1], [0, 1], "k--", lw=0.8)
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.set_title(f"{ds}: ROC of the median run per loss")
        ax.legend(fontsize=8, loc="lower right")
        written.append(_save_figure(fig, out_dir / f"roc_{_safe(ds)}.png"))
    return written


def _save_figure(fig: Any, path: Path) -> str:
    """Write ``fig`` as PNG atomically, close it, and return the file name."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    plt.close(fig)
    return path.name


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def print_tables(tables: dict, metric: str) -> None:
    """Print the summary, paired tests and failures with rich."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for key, title in (
        ("summary", f"{metric} per dataset × loss"),
        ("paired", "paired by seed vs baseline"),
        ("failures", "failed or interrupted runs"),
    ):
        headers, rows = tables[key]
        if key == "failures" and not rows:
            continue
        t = Table(title=title)
        for i, h in enumerate(headers):
            t.add_column(h, no_wrap=i < 2)  # dataset and loss names are never cut
        for r in rows:
            t.add_row(*r)
        console.print(t)


def log_to_wandb(
    tables: dict,
    out_dir: Path,
    plots: list[str],
    sources: Sequence[str],
    project: str = "adabench",
    group: str | None = None,
) -> None:
    """Log the summary tables and plots to a W&B run of job type ``report`` in the sweep's group."""
    import wandb

    from adabench.loggers import wandb_api_key_available

    mode = "online" if wandb_api_key_available() else "offline"
    group = group or str(Path(sources[0])).strip("/").replace("/", "_")
    run = wandb.init(
        project=project,
        group=group,
        job_type="report",
        name=f"report-{group}",
        dir=str(out_dir),
        mode=mode,
    )
    for key in ("summary", "paired", "failures"):
        headers, rows = tables[key]
        run.log({f"report/{key}": wandb.Table(columns=headers, data=rows)})
    for p in plots:
        run.log({f"report/{Path(p).stem}": wandb.Image(str(out_dir / p))})
    run.finish()


def report(
    sweeps: Sequence[str | Path],
    out_dir: str | Path | None = None,
    baseline: str = AUTO,
    metric: str = "auroc",
    plots: bool = True,
    wandb: bool = False,
    quiet: bool = False,
) -> dict[str, Any]:
    """Build the report; returns the rows, statistics, tests and written files."""
    if metric not in METRIC_KEYS:
        raise ValueError(f"metric must be one of {', '.join(METRIC_KEYS)}, got {metric!r}.")
    rows = collect_runs(sweeps)
    if not rows:
        raise FileNotFoundError(f"No {RESULT_FILE} found below {', '.join(map(str, sweeps))}.")
    out = Path(out_dir) if out_dir else Path(sweeps[0])
    out.mkdir(parents=True, exist_ok=True)
    stats = summarize(rows, metric)
    chosen = choose_baselines(stats, baseline, metric)
    tests = paired_tests(rows, baseline, metric, chosen)
    failures = [r for r in rows if r["status"] != "completed"]
    tables = summary_tables(stats, tests, failures, metric)
    tables["findings"] = baseline_findings(stats, metric)
    tables["paired_notes"] = paired_notes(chosen, stats, baseline)
    pngs = (plot_boxes(rows, out, metric) + plot_roc(rows, out, metric)) if plots else []
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
    return {"rows": rows, "stats": stats, "tests": tests, "failures": failures, "plots": pngs}


def main(argv: Sequence[str] | None = None) -> int:
    """``adabench report`` / ``python -m adabench.report``."""
    p = argparse.ArgumentParser(prog="adabench report", description=__doc__.split("\n")[0])
    p.add_argument("sweeps", nargs="+", help="sweep folders (e.g. multirun/2026-11-23/10-00-00)")
    p.add_argument("--out", default=None, help="output folder (default: the first sweep folder)")
    p.add_argument(
        "--baseline",
        default=AUTO,
        help="row the others are paired with (default auto: the best no-training baseline of "
        "each dataset, else softmax)",
    )
    p.add_argument("--metric", default="auroc", choices=METRIC_KEYS)
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--wandb", action="store_true", help="log tables and plots to W&B")
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
        )
    except (FileNotFoundError, ValueError) as err:
        p.error(str(err))
    return 1 if args.strict and result["failures"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
