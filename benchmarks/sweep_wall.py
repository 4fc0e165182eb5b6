"""Wall time of the tiny smoke sweep, broken down into start-up, training, embedding, scoring.

Runs ``python train.py -m experiment=smoke loss=...`` in a subprocess (a fresh sweep folder)
and reads each job's ``metrics.json``. Start-up = process wall time − the jobs' own time
(imports, Hydra composition, launcher) + each job's set-up (data, model). The last line is the
start-up share of the sweep's wall time.

    python benchmarks/sweep_wall.py [--losses softmax,arcface,...] [--write]
"""

from __future__ import annotations

import argparse

from _common import finish, machine, run_sweep, table


def measure(losses: str, overrides: list[str]) -> tuple[str, float, str]:
    """Run one sweep; return its table, the start-up share and a per-job line."""
    wall, runs = run_sweep([f"loss={losses}", *overrides])
    parts = {
        k: sum(r["times"].get(f"{k}_s", 0.0) for r in runs)
        for k in ("setup", "train", "embed", "score", "total")
    }
    outside = wall - parts["total"]  # interpreter start, imports, Hydra, launcher, logger close
    startup = outside + parts["setup"]
    rows = [
        ["once per sweep: interpreter, imports, Hydra", outside],
        ["per job: data + model set-up (all jobs)", parts["setup"]],
        ["start-up total", startup],
        ["training", parts["train"]],
        ["embedding", parts["embed"]],
        ["scoring", parts["score"]],
        ["sweep wall time", wall],
    ]
    out = table(["part", "seconds", "share"], [[n, f"{v:.2f}", f"{v / wall:.1%}"] for n, v in rows])
    n = len(runs)
    label = " ".join(overrides) or "default config"
    per_job = (
        f"{n} jobs (`-m loss={losses} {label}`): per job set-up {parts['setup'] / n:.2f} s, "
        f"training {parts['train'] / n:.2f} s"
    )
    return out, startup / wall, per_job


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument(
        "--losses", default="softmax,l2softmax,arcface,cosface,adacos_fixed,adacos_dynamic"
    )
    p.add_argument(
        "--default-losses",
        default="softmax,arcface",
        help="losses of the second sweep, on the default config (digits, 10 epochs)",
    )
    p.add_argument("--write", action="store_true")
    args = p.parse_args()
    smoke, share, smoke_line = measure(args.losses, ["experiment=smoke"])
    default, share_default, default_line = measure(args.default_losses, [])
    head = machine()
    body = f"Smoke sweep — {smoke_line}\n\n{smoke}\n\nDefault config — {default_line}\n\n{default}"
    finish(
        "sweep_wall",
        "4. Sweep wall time",
        head,
        body,
        share,
        "start-up share of the smoke sweep's wall time",
        args.write,
    )
    print(f"start-up share on the default config: {share_default:.1%}")


if __name__ == "__main__":
    main()
