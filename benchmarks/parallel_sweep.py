"""Local parallel sweeps: 2 jobs x 1 thread (joblib launcher) vs 1 job x 2 threads (basic).

Runs the 6-run smoke sweep both ways, one after the other, in fresh sweep folders, and
compares wall times. The last line is sequential wall / parallel wall (> 1: parallel wins).

    python benchmarks/parallel_sweep.py [--losses ...] [--extra trainer.max_epochs=3] [--write]
"""

from __future__ import annotations

import argparse

from _common import finish, machine, run_sweep, table


def sweep_wall(launcher_args: list[str], losses: str, extra: list[str]) -> float:
    wall, runs = run_sweep(["experiment=smoke", f"loss={losses}", *launcher_args, *extra])
    assert len(runs) == len(losses.split(","))
    return wall


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument(
        "--losses", default="softmax,l2softmax,arcface,cosface,adacos_fixed,adacos_dynamic"
    )
    p.add_argument("--extra", nargs="*", default=["trainer.max_epochs=5"])
    p.add_argument("--write", action="store_true")
    args = p.parse_args()
    seq = sweep_wall(["threads=2"], args.losses, args.extra)
    par = sweep_wall(
        ["hydra/launcher=parallel", "hydra.launcher.n_jobs=2"], args.losses, args.extra
    )
    rows = [
        ["1 job x 2 threads (basic launcher)", f"{seq:.1f}"],
        ["2 jobs x 1 thread (hydra/launcher=parallel)", f"{par:.1f}"],
    ]
    head = (
        f"{len(args.losses.split(','))}-run smoke sweep (`experiment=smoke "
        f"{' '.join(args.extra)}`); {machine()}"
    )
    finish(
        "parallel_sweep",
        "6. Local parallel sweeps",
        head,
        table(["launch", "sweep wall s"], rows),
        seq / par,
        "sequential wall / parallel wall",
        args.write,
    )


if __name__ == "__main__":
    main()
