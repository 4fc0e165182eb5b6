"""The report's PNG plots: box plot of a metric by loss, ROC curves of each loss's median run."""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from adabench.files import SCORES_FILE, atomic_write
from adabench.metrics import METRICS, higher_is_better, roc_curve

_PALETTE = ("C0", "C1", "C2", "C3", "C4", "C5", "C6", "C8", "C9")  # C7 (grey) marks baselines
_GREYS = ("0.35", "0.6", "0.2", "0.75")
# the order of the losses in every plot: no-training rows first, then the heads as in README
LOSS_ORDER = (
    "softmax",
    "l2softmax",
    "arcface",
    "arcface_s16",
    "cosface",
    "cosface_s16",
    "sphereface",
    "adacos_fixed",
    "adacos_dynamic",
)
CHANCE_SHARE = 0.4  # the chance level is drawn when the data still fills this share of the axis


def loss_order(names: Sequence[str], baselines: set[str]) -> list[str]:
    """``names`` in the report's one order: baselines, then LOSS_ORDER, then the rest by name."""

    def key(n: str) -> tuple[int, int, str]:
        if n in baselines:
            return (0, 0, n)
        return (1, LOSS_ORDER.index(n), n) if n in LOSS_ORDER else (2, 0, n)

    return sorted(names, key=key)


def loss_colours(rows: Sequence[dict]) -> dict[str, str]:
    """One colour per loss for every plot of a report: greys for the no-training rows."""
    baselines = {r["loss"] for r in rows if r.get("baseline")}
    names = loss_order({r["loss"] for r in rows if r.get("loss")}, baselines)
    trained = [n for n in names if n not in baselines]
    out = {n: _GREYS[i % len(_GREYS)] for i, n in enumerate(n for n in names if n in baselines)}
    out.update({n: _PALETTE[i % len(_PALETTE)] for i, n in enumerate(trained)})
    return out


def _chance_axis(ax: Any, values: Sequence[float], metric: str) -> None:
    """Show the metric's chance level on the y-axis, or say where it is.

    It is left off the axis (with a note) when showing it would squash the data into a sliver.
    """
    chance = METRICS[metric].chance if metric in METRICS else None
    bounds = METRICS[metric].bounds if metric in METRICS else None
    lo, hi = float(min(values)), float(max(values))
    pad = max(0.01, 0.08 * (hi - lo))
    if chance is None:
        _set_ylim(ax, lo - pad, hi + pad, bounds)
        return
    span = max(hi, chance) - min(lo, chance)
    if lo <= chance <= hi or (hi - lo + 2 * pad) >= CHANCE_SHARE * (span + 2 * pad):
        ax.axhline(chance, color="tab:red", ls=":", lw=1.0, zorder=0)
        ax.text(
            0.01,
            chance,
            f" chance {chance:g}",
            color="tab:red",
            fontsize=8,
            va="bottom",
            transform=ax.get_yaxis_transform(),
        )
        _set_ylim(ax, min(lo, chance) - pad, max(hi, chance) + pad, bounds)
    else:
        _set_ylim(ax, lo - pad, hi + pad, bounds)
        where = "below" if chance < lo else "above"
        ax.text(
            0.01,
            0.01 if chance < lo else 0.95,
            f"chance level {chance:g} is {where} the axis",
            color="tab:red",
            fontsize=8,
            transform=ax.transAxes,
        )


def _set_ylim(ax: Any, lo: float, hi: float, bounds: tuple[float, float] | None) -> None:
    """Set the y-axis to ``[lo, hi]``, never past the metric's own range (AUROC ≤ 1)."""
    if bounds is not None:
        lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
    ax.set_ylim(lo, hi)


def median_run(runs: Sequence[dict], metric: str) -> dict:
    """The run a plot draws for "the median": the lower median of ``metric`` (ties by seed).

    With an odd number of runs it is the run whose value is the table's median; with an even
    number the table's median is the mean of the middle two, and this is the lower of them,
    so the legend names which run (its seed and value) is drawn.
    """
    ordered = sorted(runs, key=lambda r: (float(r[metric]), r.get("seed") or 0))
    return ordered[(len(ordered) - 1) // 2]


def plot_boxes(rows: Sequence[dict], out_dir: Path, metric: str) -> list[str]:
    """One PNG per dataset: box plot of ``metric`` by loss with every run overlaid."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    by_ds: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    no_training = {r["loss"] for r in rows if r.get("baseline")}
    colours = loss_colours(rows)
    for r in rows:
        if r["status"] == "completed" and r.get(metric) is not None:
            by_ds[r["dataset"]][r["loss"]].append(float(r[metric]))  # every task of a dataset
    for ds, losses in sorted(by_ds.items()):
        names = loss_order(list(losses), no_training)
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
                color=colours[n],
                zorder=3,
            )
        _chance_axis(ax, [v for n in names for v in losses[n]], metric)
        better = "higher" if higher_is_better(metric) else "lower"
        ax.set_ylabel(f"{metric.upper()} ({better} is better)")
        ax.set_title(f"{ds}: {metric} by loss")
        ax.grid(axis="y", alpha=0.3)
        written.append(_save_figure(fig, out_dir / f"box_{_safe(ds)}_{metric}.png"))
    return written


def plot_roc(rows: Sequence[dict], out_dir: Path, metric: str) -> list[str]:
    """One PNG per dataset: the ROC curve of each loss's median run (from ``scores.npz``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    by: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    no_training = {r["loss"] for r in rows if r.get("baseline")}
    colours = loss_colours(rows)
    for r in rows:
        scored = r.get("protocol", "anomaly") != "classification"  # no anomaly scores there
        done = r["status"] == "completed" and r.get(metric) is not None
        if scored and done and (Path(r["run_dir"]) / SCORES_FILE).exists():
            by[r["dataset"]][r["loss"]].append(r)
    for ds, losses in sorted(by.items()):
        fig, ax = plt.subplots(figsize=(5, 5))
        for loss in loss_order(list(losses), no_training):
            drawn = median_run(losses[loss], metric)
            data = np.load(Path(drawn["run_dir"]) / SCORES_FILE)
            fpr, tpr = roc_curve(data["score"], data["is_abnormal"])
            ax.plot(
                fpr,
                tpr,
                color=colours[loss],
                ls="--" if loss in no_training else "-",
                label=f"{loss}: seed {drawn.get('seed')}, AUROC {float(drawn['auroc']):.3f}",
            )
        ax.plot([0, 1], [0, 1], color="tab:red", ls=":", lw=0.8, label="chance")
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.set_title(f"{ds}: ROC of the median run per loss\n(lower median for even n)", fontsize=9)
        ax.legend(fontsize=8, loc="lower right")
        written.append(_save_figure(fig, out_dir / f"roc_{_safe(ds)}.png"))
    return written


def plot_critical_difference(ranked: Any, path: Path) -> str | None:
    """The critical-difference diagram (autorank's, Demšar 2006) as a PNG; None without one."""
    if ranked is None or len(ranked.rankdf) < 3:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from autorank import plot_stats

    plot_stats(ranked, allow_insignificant=True)
    return _save_figure(plt.gcf(), path)


def _save_figure(fig: Any, path: Path) -> str:
    """Write ``fig`` as PNG atomically, close it, and return the file name."""
    import matplotlib.pyplot as plt

    with warnings.catch_warnings():  # the CD diagram's axes do not take part; bbox does
        warnings.simplefilter("ignore", UserWarning)
        fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight"))
    plt.close(fig)
    return path.name


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
