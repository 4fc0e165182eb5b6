"""The report folder of ``adabench tune``: tuned against untuned, plots, correlation, verdict.

- ``summary.md``, ``results.csv``, ``stats.json`` and plots: ``adabench report`` of the test
  re-runs (the cross-row verdict: every row tuned, on fresh seeds).
- ``README.md``: each row's median test metric untuned and tuned, its best validation value,
  the Spearman correlation of its trials' validation and test values, what pruning did or could
  have saved, whether tuning helped each row (paired by seed), whether a tuned loss beats the
  best tuned no-training row, and how far each tuned parameter moved from its default.
- ``studies/``: each study's best parameters (``<row>_best.yaml``), optimisation history and
  parameter importances (Optuna's matplotlib plots).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import yaml
from omegaconf import OmegaConf
from optuna.trial import TrialState

from adabench.files import RESULT_FILE
from adabench.tune.plan import BASELINES, Plan, Row
from adabench.tune.runs import compose_run


def trial_runs(study_dir: Path) -> list[dict]:
    """The ``metrics.json`` of each completed trial run of a study."""
    runs = [json.loads(p.read_text()) for p in sorted(study_dir.glob(f"*/{RESULT_FILE}"))]
    return [r for r in runs if r.get("status") == "completed" and r.get("validation")]


def trial_correlation(runs: list[dict], metric: str = "auroc") -> float:
    """Spearman(validation, test) of ``metric`` over a study's completed trial runs."""
    from scipy.stats import spearmanr

    pairs = [((r["validation"] or {}).get(metric), (r["metrics"] or {}).get(metric)) for r in runs]
    both = np.array([p for p in pairs if None not in p], dtype=float).reshape(-1, 2)
    if len(both) < 3 or np.ptp(both[:, 0]) == 0 or np.ptp(both[:, 1]) == 0:
        return float("nan")
    return float(spearmanr(both[:, 0], both[:, 1]).statistic)


def pruning_share(runs: list[dict]) -> float:
    """What an ideal median pruner could have saved of the study's run time (report.tuning)."""
    from adabench.report.tuning import Trial, pruning_bound

    trials = [
        Trial(
            r["started_at"],
            int(r["epochs"]),
            r["times"]["train_s"],
            r["times"]["total_s"],
            r["validation"]["auroc"],
        )
        for r in runs
        if r.get("times") and r["validation"].get("auroc") is not None and r.get("epochs")
    ]
    return pruning_bound(trials) if trials else float("nan")


def plots(study: optuna.Study, row: str, out: Path) -> list[str]:
    """The study's optimisation history and parameter importances as PNG files."""
    import matplotlib

    matplotlib.use("Agg")
    import warnings

    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as ovm

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message=".*too small to compute importances.*")
    written = []
    for name, draw in (
        ("history", ovm.plot_optimization_history),
        ("importances", ovm.plot_param_importances),
    ):
        try:
            ax = draw(study)
        except (ValueError, RuntimeError, ZeroDivisionError) as err:  # too few finished trials
            print(f"{row}: no {name} plot ({err})")
            continue
        path = out / f"{row}_{name}.png"
        ax.figure.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(ax.figure)
        written.append(path.name)
    return written


def defaults_of(plan: Plan, row: Row, keys: list[str]) -> dict[str, Any]:
    """The values ``keys`` take in the row's untuned configuration (the preset's, the paper's)."""
    cfg = compose_run([*plan.overrides, f"loss={row.loss}"])
    return {k: OmegaConf.select(cfg, k, default=None) for k in keys}


def default_rows(plan: Plan) -> list[dict]:
    """The untuned rows' results (run on the test seeds, or read from a results.csv)."""
    if plan.defaults == "none":
        return []
    if plan.defaults == "run":
        from adabench.report import report

        folders = [plan.work / "defaults" / r.loss for r in plan.rows]
        result = report([f for f in folders if f.exists()], None, plots=False, quiet=True)
        return list(result["rows"])
    return list(csv.DictReader(Path(plan.defaults).read_text().splitlines()))


def _fmt(x: float | None) -> str:
    return "–" if x is None or x != x else f"{x:.4f}"


def study_table(plan: Plan, studies: dict, defaults: dict, tuned: dict, out: Path) -> list[str]:
    """One line per row: defaults, tuned, best validation, Spearman, pruning."""
    lines = [
        "| row | defaults (median test AUROC) | tuned | best validation | trials "
        "(completed / pruned / failed) | Spearman(val, test) over trials | pruning could "
        "save ≤ |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in plan.rows:
        study = studies[row.loss]
        trials = study.get_trials(deepcopy=False)
        n = [sum(t.state == s for t in trials) for s in (TrialState.COMPLETE, TrialState.PRUNED)]
        failed = sum(
            t.state == TrialState.FAIL and "not_counted" not in t.user_attrs for t in trials
        )
        runs = trial_runs(plan.study_dir(row))
        best = study.best_value if n[0] else None
        bound = pruning_share(runs) if row.trains else float("nan")
        lines.append(
            f"| {row.loss}{'' if row.trains else ' (no training)'} | "
            f"{_fmt(defaults.get(row.loss))} | {_fmt(tuned.get(row.loss))} | {_fmt(best)} | "
            f"{n[0]} / {n[1]} / {failed} | {trial_correlation(runs):+.2f} | "
            f"{'–' if bound != bound else f'{bound:.0%}'} |"
        )
    return lines


def write_summary(plan: Plan, studies: dict[str, optuna.Study]) -> Path:
    """Write the report folder; returns its README.md."""
    from adabench.report import report
    from adabench.report.tuning import medians, parameter_moves

    out = plan.out
    (out / "studies").mkdir(parents=True, exist_ok=True)
    result = report([plan.work / "test" / r.loss for r in plan.rows], out, quiet=True)
    tuned, drows = medians(result["rows"]), default_rows(plan)
    defaults = medians(drows)
    moves = {}
    for row in plan.rows:
        study = studies[row.loss]
        best = {"best_params": dict(study.best_params), "best_value": float(study.best_value)}
        (out / "studies" / f"{row.loss}_best.yaml").write_text(yaml.safe_dump(best))
        plots(study, row.loss, out / "studies")
        keys = list(best["best_params"])
        moves[row.loss] = parameter_moves(best["best_params"], defaults_of(plan, row, keys))
    shared = plan.shared
    lines = [
        f"# {plan.task}: untuned against equal-budget tuning, every row",
        "",
        f"{shared['n_trials']} trials per row ({shared['sampler']['_target_'].split('.')[-1]}, "
        f"seed {shared['sampler'].get('seed')}, pruner "
        f"{shared['pruner']['_target_'].split('.')[-1]}; objective: the validation metric, never "
        f"a test one; trials train at seed {shared['trial_seed']}), then each row's best "
        f"configuration on the test split over fresh seeds {shared['test_seeds']}. Overrides "
        f"of every run: `{' '.join(plan.overrides) or '(none)'}`. Cross-row verdict: "
        "[summary.md](summary.md).",
        "",
        *study_table(plan, studies, defaults, tuned, out),
        "",
        "*Pruning could save ≤*: the share of a study's run time that a median pruner could "
        "have saved had each trial's first epoch ranked as its final value does "
        "(`adabench.report.tuning.pruning_bound`; an upper bound). *Spearman*: do the trials' "
        "validation values order them as their test values do?",
    ]
    lines += _questions(plan, drows, result["rows"], defaults, tuned)
    lines += ["", "## How far did the tuned parameters move from the defaults?", ""]
    lines += [f"- **{loss}**: " + "; ".join(moved) for loss, moved in moves.items()]
    (out / "README.md").write_text("\n".join(lines) + "\n")
    return out / "README.md"


def _questions(plan: Plan, drows: list, trows: list, defaults: dict, tuned: dict) -> list[str]:
    from adabench.report.tuning import against_baseline, ranking_change, tuning_effect

    losses = [r.loss for r in plan.rows]
    lines = ["", "## Does tuning change the ranking?", ""]
    try:
        rank = ranking_change(defaults, tuned, losses)
        lines += [
            f"- untuned: {' > '.join(rank.defaults)}",
            f"- tuned:   {' > '.join(rank.tuned)}",
            f"- Kendall's tau between the two orders of medians: {rank.kendall_tau:+.2f} "
            f"({'changed' if rank.changed else 'the same order'}).",
        ]
    except ValueError as err:
        lines.append(f"- not answered: {err}.")
    effects = tuning_effect(drows, trows, losses)
    if effects:
        lines += [
            "",
            "## Did tuning help each row?",
            "",
            "Tuned minus untuned, paired by seed on the same test split: 'better' / 'worse' = "
            "paired t-test p < 0.05 after Holm over the rows; 'equivalent' = the 90 % CI of the "
            f"mean difference inside ±{effects[0].rope} AUROC (TOST); else 'undecided'.",
            "",
            "| row | seeds improved | mean diff | 90 % CI | paired t p (Holm) | verdict |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {e.loss} | {e.improved}/{e.seeds} | {e.mean_diff:+.4f} | "
            f"[{e.ci90[0]:+.4f}, {e.ci90[1]:+.4f}] | {e.p_t_holm:.4f} | {e.verdict} |"
            for e in effects
        ]
    base = max((b for b in BASELINES if b in tuned), key=lambda b: tuned[b], default=None)
    trained = [x for x in losses if x not in BASELINES]
    if base is not None and trained:
        lines += [
            "",
            f"## Does a tuned loss beat the best tuned no-training row ({base})?",
            "",
            "Paired by seed; 'beats' = better on every seed and paired t-test p < 0.05 after "
            "Holm over the losses. DeLong: seeds where the run's AUROC is significantly "
            "better / worse than the baseline's on the same test images (p < 0.05).",
            "",
            "| loss | seeds won | mean diff | paired t p (Holm) | DeLong better / worse | beats |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {c.loss} | {c.wins}/{c.seeds} | {c.mean_diff:+.4f} | {c.p_t_holm:.4f} | "
            f"{c.delong_better} / {c.delong_worse} | {'yes' if c.beats else 'no'} |"
            for c in against_baseline(trows, trained, base)
        ]
    return lines
