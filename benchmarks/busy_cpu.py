"""Training throughput on a busy CPU: one run alone vs the same run beside an identical one.

Each measurement is a separate process (``_train_worker.py``) running adabench's Lightning loop
(mobilenetv2_050 at 32 px, batch 128, digits by default) for a fixed time after a warm-up and
printing its images/s. For each OpenMP wait policy, rounds interleave "alone" (one process) and
"shared" (two processes at once; their mean). adabench's policy is a short spin count (set at
import, adabench/runtime.py); ``PASSIVE`` sleeps at once; ``default`` is what torch does
without either (threads spin ~3 ms while waiting).
The last line is shared / alone throughput under adabench's policy (the busy-CPU ratio).

    python benchmarks/busy_cpu.py [--seconds 20] [--rounds 3] [--data-root DATA] [--write]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from _common import ab_rows, finish, interleaved, machine, table

HERE = Path(__file__).resolve()
ADABENCH = "adabench (GOMP_SPINCOUNT=1000)"
POLICIES = {
    ADABENCH: "",
    "OMP_WAIT_POLICY=PASSIVE": "PASSIVE",
    "torch default (spinning)": "default",
}


def launch(n: int, policy: str, seconds: float, overrides: list[str]) -> float:
    """Start ``n`` identical workers at once; their mean images/s.

    ``policy``: ``default`` (OpenMP's), adabench's wait policy names, or ``spin=N`` (OpenMP's
    default policy with ``GOMP_SPINCOUNT=N``).
    """
    env = {**os.environ, "ADABENCH_OMP_WAIT_POLICY": policy}
    env.pop("OMP_WAIT_POLICY", None)
    env.pop("GOMP_SPINCOUNT", None)
    if policy.startswith("spin="):
        env.update(ADABENCH_OMP_WAIT_POLICY="default", GOMP_SPINCOUNT=policy[5:])
    cmd = [sys.executable, str(HERE.parent / "_train_worker.py"), str(seconds), *overrides]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True) for _ in range(n)]
    out = [p.communicate()[0] for p in procs]
    if any(p.returncode for p in procs):
        sys.exit(f"worker failed: {out}")
    return statistics.mean(json.loads(o.strip().splitlines()[-1])["ips"] for o in out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seconds", type=float, default=20.0, help="timed seconds per measurement")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--data-root", default=None, help="use Fashion-MNIST from this folder")
    p.add_argument("--spin", nargs="*", default=[], help="also measure these GOMP_SPINCOUNTs")
    p.add_argument("--write", action="store_true")
    args = p.parse_args()
    policies = {**POLICIES, **{f"GOMP_SPINCOUNT={n}": f"spin={n}" for n in args.spin}}
    overrides = ["backbone=mobilenetv2_050", "dataset.image_size=32", "batch_size=128"]
    if args.data_root:
        overrides += ["dataset=fashion_mnist", f"dataset.root={args.data_root}"]
        overrides += ["dataset.download=false", "dataset.image_size=32"]
    load = os.getloadavg()[0]
    cases = {  # interleaved: alone, shared, for each policy in turn
        name: {
            mode: functools.partial(launch, n, policy, args.seconds, overrides)
            for n, mode in ((1, "alone"), (2, "shared"))
        }
        for name, policy in policies.items()
    }
    rows, ratios = ab_rows(interleaved(args.rounds, cases), list(policies), "alone", "shared")
    head = (
        f"mobilenetv2_050 + arcface, 32 px, batch 128, {args.seconds:.0f} s per measurement, "
        f"median of {args.rounds} interleaved rounds; 'shared' = mean of two identical runs "
        f"started together; {machine()}; load before: {load:.2f}"
    )
    body = table(
        ["OpenMP wait policy", "alone img/s", "shared img/s (each)", "shared / alone"], rows
    )
    finish(
        "busy_cpu",
        "7. Training on a busy CPU",
        head,
        body,
        ratios[ADABENCH],
        "busy-CPU ratio: shared / alone throughput, adabench's policy",
        args.write,
    )


if __name__ == "__main__":
    main()
