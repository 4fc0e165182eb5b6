"""The tuned study's README: defaults vs tuned, the questions answered, plots (tune_protocol.py).

Kept apart from the driver so that each reads in one sitting; the statistics are the pure
functions of ``adabench.report.tuning``.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import yaml
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parents[1]
BASELINES = ("baseline_pixels", "baseline_features")


def trial_runs(study_dir: Path) -> list[dict]:
    """The metrics.json of each completed trial run of a study."""
    runs = [json.loads(p.read_text()) for p in study_dir.glob("*/metrics.json")]
    return [r for r in runs if r.get("status") == "completed" and r.get("validation")]


def trial_correlation(runs: list[dict]) -> float:
    """Spearman(validation AUROC, test AUROC) over a study's completed trial runs."""
    pairs = [(r["validation"].get("auroc"), r["metrics"].get("auroc")) for r in runs]
    both = np.array([p for p in pairs if None not in p], dtype=float).reshape(-1, 2)
    return float(spearmanr(both[:, 0], both[:, 1]).statistic) if len(both) > 2 else float("nan")


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
        if r.get("times") and r["validation"].get("auroc") is not None
    ]
    return pruning_bound(trials) if trials else float("nan")


def importances(study):  # noqa: ANN001, ANN201 - an optuna Study; a matplotlib Axes
    """Parameter importances as a bar chart.

    Optuna 2.10 (the version hydra-optuna-sweeper admits) cannot draw them today: its default
    evaluator (fANOVA) fails under numpy ≥ 1.24 and its plot calls ``matplotlib.cm.get_cmap``,
    gone in matplotlib 3.9. The importances are Optuna's, by the random forest's mean decrease
    in impurity; only the bars are drawn here.
    """
    import matplotlib.pyplot as plt
    import optuna

    evaluator = optuna.importance.MeanDecreaseImpurityImportanceEvaluator(seed=0)
    found = optuna.importance.get_param_importances(study, evaluator=evaluator)
    _, ax = plt.subplots(figsize=(6, 0.35 * len(found) + 1))
    ax.barh(list(found)[::-1], list(found.values())[::-1], color="tab:blue")
    ax.set_xlabel("importance for the validation AUROC (mean decrease in impurity)")
    ax.set_title(f"{study.study_name}: parameter importances")
    return ax


def plots(study_dir: Path, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna
    from optuna.visualization import matplotlib as ovm

    storage = f"sqlite:///{study_dir / 'optuna.db'}"
    (summary,) = optuna.get_all_study_summaries(storage)
    study = optuna.load_study(study_name=summary.study_name, storage=storage)
    written = []
    for name, draw in (("history", ovm.plot_optimization_history), ("importances", importances)):
        try:
            ax = draw(study)
        except (ValueError, RuntimeError) as err:  # too few finished trials for importances
            print(f"{study_dir.name}: no {name} plot ({err})")
            continue
        path = out / f"{study_dir.name}_{name}.png"
        ax.figure.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(ax.figure)
        written.append(path.name)
    return written


def defaults_of(common: list[str], loss: str, keys: list[str]) -> dict:
    """The values ``keys`` take in the untuned configuration (the preset's, the paper's)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    plain = [o for o in common if not o.startswith(("dataset.root", "hydra."))]
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=[*plain, f"loss={loss}"])
    return {k: OmegaConf.select(cfg, k, default=None) for k in keys}


def write_readme(args, work: Path, out: Path, best: dict, result: dict, common: list) -> None:
    """README.md: defaults vs tuned, the three questions answered, each loss's parameters."""
    from adabench.report.tuning import (
        against_baseline,
        medians,
        parameter_moves,
        ranking_change,
        tuning_effect,
    )

    tuned = medians(result["rows"])
    default_rows = (
        list(csv.DictReader(Path(args.defaults).read_text().splitlines())) if args.defaults else []
    )
    defaults = medians(default_rows)
    seeds = ",".join(map(str, args.seeds))
    lines = [
        f"# {args.experiment}: paper defaults vs equal-budget tuning",
        "",
        f"{args.trials} trials per loss (TPE, seed 0, objective: the validation AUROC, never a "
        f"test metric), then each loss's best configuration on the test split over seeds "
        f"{seeds}, beside the no-training rows; full report: [summary.md](summary.md).",
        "",
        "| loss | defaults (median test AUROC) | tuned | best validation AUROC | "
        "Spearman(val, test) over trials | pruning could save ≤ |",
        "|---|---|---|---|---|---|",
    ]
    moves = {}
    for loss, res in best.items():
        study_dir = work / "studies" / loss
        (out / "studies" / f"{loss}_optimization_results.yaml").write_text(yaml.safe_dump(res))
        plots(study_dir, out / "studies")
        d, t, runs = defaults.get(loss), tuned.get(loss), trial_runs(study_dir)
        lines.append(
            f"| {loss} | {'–' if d is None else f'{d:.4f}'} | {'–' if t is None else f'{t:.4f}'}"
            f" | {res['best_value']:.4f} | {trial_correlation(runs):+.2f} "
            f"| {pruning_share(runs):.0%} |"
        )
        keys = list(res["best_params"])
        moves[loss] = parameter_moves(res["best_params"], defaults_of(common, loss, keys))
    for b in (x for x in BASELINES if x in tuned):
        d = defaults.get(b)
        lines.append(
            f"| {b} (no training) | {'–' if d is None else f'{d:.4f}'} | {tuned[b]:.4f} "
            "| – | – | – |"
        )
    losses = list(best)
    lines += [
        "",
        "*Pruning could save ≤*: the share of the study's run time that Optuna's median pruner "
        "could have saved had each trial's first epoch ranked as its final value does "
        "(`adabench.report.tuning.pruning_bound`); an upper bound, since the sweeper cannot prune.",
        "",
        "## Does tuning change the ranking?",
        "",
    ]
    try:
        rank = ranking_change(defaults, tuned, losses)
        lines += [
            f"- defaults: {' > '.join(rank.defaults)}",
            f"- tuned:    {' > '.join(rank.tuned)}",
            f"- Kendall's tau between the two orders of medians: {rank.kendall_tau:+.2f} "
            f"({'changed' if rank.changed else 'the same order'}).",
        ]
    except ValueError as err:
        lines.append(f"- not answered: {err} (pass --defaults results.csv).")
    effects = tuning_effect(default_rows, result["rows"], losses)
    if effects:
        lines += [
            "",
            "## Did tuning help each loss?",
            "",
            "Tuned minus defaults, paired by seed on the same test split: 'better' / 'worse' = "
            "paired t-test p < 0.05 after Holm over the losses; 'equivalent' = the 90 % CI of the "
            f"mean difference inside ±{effects[0].rope} AUROC (TOST); else 'undecided'.",
            "",
            "| loss | seeds improved | mean diff | 90 % CI | paired t p (Holm) | verdict |",
            "|---|---|---|---|---|---|",
        ]
        for e in effects:
            lines.append(
                f"| {e.loss} | {e.improved}/{e.seeds} | {e.mean_diff:+.4f} | "
                f"[{e.ci90[0]:+.4f}, {e.ci90[1]:+.4f}] | {e.p_t_holm:.4f} | {e.verdict} |"
            )
    base = max((b for b in BASELINES if b in tuned), key=lambda b: tuned[b], default=None)
    if base is not None:
        lines += [
            "",
            f"## Does a tuned loss beat the best no-training baseline ({base})?",
            "",
            "Paired by seed; 'beats' = better on every seed and paired t-test p < 0.05 after "
            "Holm over the losses. DeLong: seeds where the run's AUROC is significantly "
            "better / worse than the baseline's on the same test images (p < 0.05).",
            "",
            "| loss | seeds won | mean diff | paired t p (Holm) | DeLong better / worse | beats |",
            "|---|---|---|---|---|---|",
        ]
        for c in against_baseline(result["rows"], losses, base):
            lines.append(
                f"| {c.loss} | {c.wins}/{c.seeds} | {c.mean_diff:+.4f} | {c.p_t_holm:.4f} | "
                f"{c.delong_better} / {c.delong_worse} | {'yes' if c.beats else 'no'} |"
            )
    lines += ["", "## How far did the tuned parameters move from the defaults?", ""]
    for loss, moved in moves.items():
        lines.append(f"- **{loss}**: " + "; ".join(moved))
    (out / "README.md").write_text("\n".join(lines) + "\n")
