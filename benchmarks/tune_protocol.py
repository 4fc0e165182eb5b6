"""Equal-budget tuning, end to end: tune every loss on validation, re-run the best on test.

    python benchmarks/tune_protocol.py DATA --experiment fmnist_sneaker_boot_pretrained
        [--losses softmax l2softmax arcface cosface adacos_fixed adacos_dynamic] [--trials 25]
        [--seeds 0 1 2 3 4] [--parallel 2] [--out docs/results/fmnist_sneaker_boot_pretrained_tuned]
        [--extra dataset.download=false ...]

1. Each loss gets its family's study (``hparams_search=<family>``: the same 25 trials and TPE
   seed for all), objective = the validation metric. A study that already holds ``--trials``
   finished trials is not extended, so the command resumes where it stopped.
2. Each loss's best configuration (``optimization_results.yaml``) is re-run on the test split
   over ``--seeds``, beside the two no-training rows, in one sweep folder (resumable).
3. ``OUT`` receives the report of that sweep, each study's ``optimization_results.yaml``, its
   optimisation history and parameter importances (Optuna's matplotlib plots), the Spearman
   correlation between the trials' validation and test AUROC, and ``README.md``: the tuned
   medians beside the presets' defaults (``--defaults``: a results.csv of the defaults) with
   each loss's tuned parameters.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import yaml
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parents[1]
FAMILY = {
    "softmax": "softmax",
    "l2softmax": "l2softmax",
    "arcface": "arcface",
    "cosface": "cosface",
    "sphereface": "sphereface",
    "adacos_fixed": "adacos",
    "adacos_dynamic": "adacos",
}
BASELINES = ("baseline_pixels", "baseline_features")


def train(args: list[str], cwd: Path) -> int:
    cmd = [sys.executable, str(ROOT / "train.py"), *args, "trainer.enable_progress_bar=false"]
    print("$", " ".join(cmd), flush=True)
    return subprocess.run(cmd, cwd=cwd).returncode


def study_trials(study_dir: Path) -> list:
    import optuna

    db = study_dir / "optuna.db"
    if not db.exists():
        return []
    storage = f"sqlite:///{db}"
    names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
    return [t for n in names for t in optuna.load_study(study_name=n, storage=storage).trials]


def tune(loss: str, common: list[str], trials: int, work: Path) -> dict:
    """Run (or continue) the loss's study up to ``trials`` finished trials; its best params."""
    study_dir = work / "studies" / loss
    done = [t for t in study_trials(study_dir) if t.state.name in ("COMPLETE", "FAIL")]
    if len(done) < trials:
        train(
            [
                *common,
                f"loss={loss}",
                f"hparams_search={FAMILY[loss]}",
                f"hydra.sweep.dir={study_dir}",
                f"hydra.sweeper.n_trials={trials - len(done)}",
            ],
            ROOT,
        )
    return yaml.safe_load((study_dir / "optimization_results.yaml").read_text())


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


def in_parallel(jobs: int, work: list) -> list:
    """Call each of ``work``'s thunks, ``jobs`` at a time (each one starts its own processes)."""
    if jobs <= 1:
        return [w() for w in work]
    with ThreadPoolExecutor(jobs) as pool:
        return list(pool.map(lambda w: w(), work))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("data_root", help="dataset.root for every run ('none': the bundled digits)")
    p.add_argument("--experiment", required=True)
    p.add_argument("--losses", nargs="*", default=[*list(FAMILY)[:4], *list(FAMILY)[5:]])
    p.add_argument("--trials", type=int, default=25)
    p.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--parallel", type=int, default=1, help="losses tuned at once (processes)")
    p.add_argument("--out", default=None)
    p.add_argument("--work", default=None, help="studies and sweeps (default multirun/<exp>_tuned)")
    p.add_argument("--defaults", default=None, help="results.csv of the paper defaults")
    p.add_argument("--extra", nargs="*", default=[], help="more overrides for every run")
    args = p.parse_args()
    unknown = [x for x in args.losses if x not in FAMILY]
    if unknown:
        p.error(f"--losses: no hparams_search family for {unknown}; choose from {list(FAMILY)}")
    work = Path(args.work or ROOT / "multirun" / f"{args.experiment}_tuned").resolve()
    out = Path(args.out or ROOT / "docs" / "results" / f"{args.experiment}_tuned").resolve()
    (out / "studies").mkdir(parents=True, exist_ok=True)
    root = [] if args.data_root == "none" else [f"dataset.root={args.data_root}"]
    common = [f"experiment={args.experiment}", *root, *args.extra]
    if args.parallel > 1:
        common.append("threads=1")  # one core per process
    tuned_best = in_parallel(
        args.parallel,
        [lambda loss=loss: tune(loss, common, args.trials, work) for loss in args.losses],
    )
    best = dict(zip(args.losses, tuned_best, strict=True))
    test_dir, seeds = work / "test", ",".join(map(str, args.seeds))

    def on_test(loss: str, params: list[str]) -> int:  # a loss's best config, every seed
        sweep = [f"seed={seeds}", f"hydra.sweep.dir={test_dir / loss.replace(',', '+')}"]
        return train(["-m", *common, f"loss={loss}", *params, *sweep], ROOT)

    jobs = [
        lambda loss=loss, r=r: on_test(loss, [f"{k}={v}" for k, v in r["best_params"].items()])
        for loss, r in best.items()
    ]
    in_parallel(args.parallel, [*jobs, lambda: on_test(",".join(BASELINES), [])])
    from adabench.report import report

    result = report([test_dir], out, quiet=True)
    write_readme(args, work, out, best, result, common)
    print(f"wrote {out / 'README.md'}")


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


if __name__ == "__main__":
    main()
