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
   each loss's tuned parameters, whether tuning helped each loss (paired by seed) and what
   pruning could have saved (``tuned_readme.py``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml
from tuned_readme import BASELINES, write_readme

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


def distinct_completed(trials: list) -> set[str]:
    """The completed trials' distinct parameter sets: what counts toward a study's budget.

    A resumed sweep can hand Optuna a configuration that already ran (the run is skipped and
    its result returned): counted once, so every study gets the same number of distinct trials.
    """
    return {
        json.dumps(t.params, sort_keys=True, default=str)
        for t in trials
        if t.state.name == "COMPLETE"
    }


def tune(loss: str, common: list[str], trials: int, work: Path) -> dict:
    """Run (or continue) the loss's study up to ``trials`` finished trials; its best params."""
    study_dir = work / "studies" / loss
    done = distinct_completed(study_trials(study_dir))
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


if __name__ == "__main__":
    main()
