"""Equal-budget tuning, end to end: tune every loss on validation, re-run the best on test.

    python benchmarks/tune_protocol.py DATA --experiment fmnist_sneaker_boot_pretrained
        [--losses softmax l2softmax arcface cosface adacos_fixed adacos_dynamic] [--trials 25]
        [--seeds 0 1 2 3 4] [--out docs/results/fmnist_sneaker_boot_pretrained_tuned]
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


def trial_correlation(study_dir: Path) -> float:
    """Spearman(validation AUROC, test AUROC) over a study's completed trial runs."""
    pairs = []
    for path in study_dir.glob("*/metrics.json"):
        rec = json.loads(path.read_text())
        if rec.get("status") == "completed" and rec.get("validation"):
            pairs.append((rec["validation"].get("auroc"), rec["metrics"].get("auroc")))
    both = np.array([p for p in pairs if None not in p], dtype=float).reshape(-1, 2)
    return float(spearmanr(both[:, 0], both[:, 1]).statistic) if len(both) > 2 else float("nan")


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
    for name, draw in (("history", ovm.plot_optimization_history), ("importances", None)):
        try:
            ax = draw(study) if draw else ovm.plot_param_importances(study)
        except (ValueError, RuntimeError) as err:  # too few finished trials for importances
            print(f"{study_dir.name}: no {name} plot ({err})")
            continue
        path = out / f"{study_dir.name}_{name}.png"
        ax.figure.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(ax.figure)
        written.append(path.name)
    return written


def medians(results_csv: Path) -> dict[str, float]:
    if not results_csv.exists():
        return {}
    rows = list(csv.DictReader(results_csv.open()))
    out: dict[str, list[float]] = {}
    for r in rows:
        if r["status"] == "completed" and r.get("auroc"):
            out.setdefault(r["loss"].split(" (")[0], []).append(float(r["auroc"]))
    return {k: float(np.median(v)) for k, v in out.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("data_root", help="dataset.root for every run ('none': the bundled digits)")
    p.add_argument("--experiment", required=True)
    p.add_argument("--losses", nargs="*", default=[*list(FAMILY)[:4], *list(FAMILY)[5:]])
    p.add_argument("--trials", type=int, default=25)
    p.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2, 3, 4])
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
    best = {loss: tune(loss, common, args.trials, work) for loss in args.losses}
    test_dir, seeds = work / "test", ",".join(map(str, args.seeds))
    for loss, result in best.items():  # the best configuration on the test split, every seed
        params = [f"{k}={v}" for k, v in result["best_params"].items()]
        train(
            [
                "-m",
                *common,
                f"loss={loss}",
                *params,
                f"seed={seeds}",
                f"hydra.sweep.dir={test_dir}",
            ],
            ROOT,
        )
    train(
        [
            "-m",
            *common,
            f"loss={','.join(BASELINES)}",
            f"seed={seeds}",
            f"hydra.sweep.dir={test_dir}",
        ],
        ROOT,
    )
    from adabench.report import report

    report([test_dir], out, quiet=True)
    lines, tuned = [], medians(out / "results.csv")
    defaults = medians(Path(args.defaults)) if args.defaults else {}
    lines += [
        f"# {args.experiment}: paper defaults vs equal-budget tuning",
        "",
        f"{args.trials} trials per loss (TPE, seed 0, objective: validation AUROC), then the "
        f"best configuration on test over seeds {seeds}; report: [summary.md](summary.md).",
        "",
        "| loss | defaults (median test AUROC) | tuned | Spearman(val, test) over trials | "
        "tuned parameters |",
        "|---|---|---|---|---|",
    ]
    for loss, result in best.items():
        study_dir = work / "studies" / loss
        (out / "studies" / f"{loss}_optimization_results.yaml").write_text(yaml.safe_dump(result))
        plots(study_dir, out / "studies")
        rho = trial_correlation(study_dir)
        params = ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in result["best_params"].items()
        )
        d, t = defaults.get(loss), tuned.get(loss)
        lines.append(
            f"| {loss} | {'–' if d is None else f'{d:.4f}'} | "
            f"{'–' if t is None else f'{t:.4f}'} | {rho:+.2f} | {params} |"
        )
    for b in BASELINES:
        if b in tuned:
            lines.append(
                f"| {b} (no training) | {defaults.get(b, float('nan')):.4f} | "
                f"{tuned[b]:.4f} | – | – |"
            )
    (out / "README.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out / 'README.md'}")


if __name__ == "__main__":
    main()
