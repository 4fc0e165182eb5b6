"""``adabench tune``: equal-budget tuning of every row on validation, its best on fresh seeds."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from adabench.console import say
from adabench.errors import ConfigError, DataError
from adabench.tune.plan import BASELINES, DEFAULT_LOSSES, Plan

DESCRIPTION = """Tune every row on validation with the same budget and sampler, then run each
row's best configuration on the test split over seeds no trial used, and write one report
folder. Rows: the losses named (default: the six of the seed benchmark) and the two
no-training rows, each with its own search space (conf/hparams_search/). Resumable: the same
command continues every study and skips finished runs.

examples:
  adabench tune experiment=smoke --losses arcface --trials 3 --test-seeds 1 2
  adabench tune experiment=fmnist_sneaker_boot_pretrained dataset.root=DATA --workers 2
  adabench tune dataset=inspection dataset.root=OK_NG_FOLDER --losses arcface cosface"""


def parser() -> argparse.ArgumentParser:
    """The command line of ``adabench tune``."""
    p = argparse.ArgumentParser(
        prog="adabench tune",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("overrides", nargs="*", help="overrides of every run, as for train.py")
    p.add_argument("--losses", nargs="+", default=list(DEFAULT_LOSSES), help="trained rows")
    p.add_argument("--no-baselines", action="store_true", help="leave out the no-training rows")
    p.add_argument("--trials", type=int, help="trials per study (default: _budget.yaml's 25)")
    p.add_argument("--test-seeds", type=int, nargs="+", help="re-run seeds (default 1 2 3 4 5)")
    p.add_argument("--pruner", choices=("none", "median", "halving"), help="hparams_search/pruner")
    p.add_argument(
        "--space",
        action="append",
        default=[],
        metavar="LOSS=SPACE",
        help="a row's search space file (conf/hparams_search/SPACE.yaml)",
    )
    p.add_argument("--work", help="studies and runs (default multirun/<experiment>_tuned)")
    p.add_argument("--out", help="the report folder (default WORK/report)")
    p.add_argument(
        "--storage",
        help="an RDB URL (postgresql://...) for every study; "
        "default: a journal file in each study's folder",
    )
    p.add_argument("--workers", type=int, default=1, help="processes sharing the studies")
    p.add_argument(
        "--defaults",
        default="run",
        help="run (untuned rows on the test seeds), none, or a results.csv",
    )
    p.add_argument("--no-report", action="store_true", help="a worker: tune and re-run only")
    return p


def plan_from(args: argparse.Namespace) -> Plan:
    """The plan the command line asks for."""
    from adabench.tune.plan import make_plan

    losses = [*args.losses, *(() if args.no_baselines else BASELINES)]
    losses = list(dict.fromkeys(losses))
    search = []
    if args.trials is not None:
        search.append(f"hparams_search.n_trials={args.trials}")
    if args.test_seeds:
        search.append(f"hparams_search.test_seeds=[{','.join(map(str, args.test_seeds))}]")
    if args.pruner:
        search.append(f"hparams_search/pruner={args.pruner}")
    spaces = dict(s.split("=", 1) for s in args.space)
    experiment = next(
        (o.split("=", 1)[1] for o in args.overrides if o.startswith("experiment=")), None
    )
    work = Path(args.work or Path("multirun") / f"{experiment or 'tune'}_tuned").resolve()
    out = Path(args.out).resolve() if args.out else work / "report"
    return make_plan(
        losses,
        list(args.overrides),
        search,
        spaces,
        work=work,
        out=out,
        storage=args.storage,
        defaults=args.defaults,
    )


def start_workers(argv: list[str], n: int) -> list[subprocess.Popen]:
    """``n - 1`` more processes on the same studies, each on its share of the cores."""
    threads = max(1, (os.cpu_count() or 1) // n)
    procs = []
    for i in range(1, n):
        env = {**os.environ, "ADABENCH_TUNE_WORKER": str(i)}
        cmd = [
            sys.executable,
            "-m",
            "adabench.tune",
            *argv,
            "--workers",
            "1",
            "--no-report",
            f"threads={threads}",
        ]
        procs.append(subprocess.Popen(cmd, env=env))
    return procs


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``adabench tune``."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_intermixed_args(args_list)
    if args.workers > 1:
        threads = max(1, (os.cpu_count() or 1) // args.workers)
        args.overrides.append(f"threads={threads}")
    from adabench.resolvers import register
    from adabench.tune.driver import StudyStopped, work
    from adabench.tune.study import worker_index

    register()
    try:
        plan = plan_from(args)
    except ConfigError as err:
        say(f"[adabench] error: {err}", err=True)
        return 2
    procs = start_workers(_without_workers(args_list), args.workers) if args.workers > 1 else []
    try:
        studies = work(plan, worker_index())
    except StudyStopped as err:
        say(f"[adabench] error: {err}", err=True)
        say(
            "[adabench] study stopped: no trial has completed, and this error names no tuned "
            "parameter, so every trial would repeat it. Fix it, then run the same command again.",
            err=True,
        )
        return 1
    except (ConfigError, DataError) as err:
        say(f"[adabench] error: {err}", err=True)
        return 1
    except KeyboardInterrupt:
        say("[adabench] interrupted; run the same command again to continue.", err=True)
        return 130
    finally:
        for p in procs:
            p.wait()
    if args.no_report:
        return 0
    from adabench.tune.summary import write_summary

    readme = write_summary(plan, studies)
    say(f"[adabench] tuned {len(plan.rows)} rows; report: {readme.parent}")
    return 0


def _without_workers(argv: list[str]) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == "--workers":
            skip = True
            continue
        if not a.startswith("--workers="):
            out.append(a)
    return out
