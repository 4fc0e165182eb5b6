"""Set-up seconds of the next run in a sweep's (or a study's) process: re-reading vs reusing.

The runs of a sweep and the trials of a study share one process. Arm "re-read" clears what a
process now keeps between runs (the folder listing's hash, the decoded pools, the trunk-output
shards) and computes the pixel statistics, as every run did before; arm "reuse" is the next run
now. Arms alternate; the first build of each is dropped.

    python benchmarks/trial_setup.py --data-root DATA/cifar10-jpg [--rounds 3] [--write]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from _common import DOCS, finish, machine, table
from hydra import compose, initialize_config_dir

from adabench import trunk_cache
from adabench.build import build_run
from adabench.data import folder, pools
from adabench.data.images import channel_stats
from adabench.resolvers import register

CONF = str(DOCS.parents[1] / "conf")


def forget() -> None:
    """What a fresh process (or the code before) started each run with: nothing."""
    pools._KEPT.clear()
    trunk_cache._READ.clear()
    folder._FINGERPRINTS.clear()


def setup_seconds(cfg, reuse: bool) -> float:
    if not reuse:
        forget()
    t0 = time.perf_counter()
    built = build_run(cfg)
    seconds = time.perf_counter() - t0
    if not reuse:  # every run computed the training images' statistics before
        (train,) = [p for p in pools._KEPT.values() if p.key == built.dm.pool_keys["train"]]
        images = train.images[torch.from_numpy(built.dm.split.train_indices())]
        t1 = time.perf_counter()
        channel_stats(images)
        seconds += time.perf_counter() - t1
    return seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data-root", required=True, help="the cifar10-jpg ImageFolder tree")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--write", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(1)
    register()
    load = os.getloadavg()[0]
    overrides = [
        "experiment=suite_cifar10_pairs",
        "dataset=cifar10_jpg",
        f"dataset.root={args.data_root}",
        "loss=arcface",
    ]
    with initialize_config_dir(CONF, version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    times: dict[str, list[float]] = {"re-read": [], "reuse": []}
    for arm in ("re-read", "reuse"):  # warm-up: caches on disk exist, the OS has the files
        setup_seconds(cfg, arm == "reuse")
    for r in range(args.rounds):
        for arm in ("re-read", "reuse"):
            times[arm].append(setup_seconds(cfg, arm == "reuse"))
            print(f"round {r} {arm}: {times[arm][-1]:.2f} s", flush=True)
    before, now = (statistics.median(times[a]) for a in ("re-read", "reuse"))
    body = table(
        ["arm", "median set-up s", "runs"],
        [[a, f"{statistics.median(t):.2f}", str(len(t))] for a, t in times.items()],
    )
    finish(
        "trial_setup",
        "12. Set-up of the next run in a process (CIFAR-10 suite run)",
        f"{machine()}; load {load:.1f} before (other sweeps shared the cores; the arms "
        f"alternate); {' '.join(overrides[:2])} loss=arcface, 96 px pool of 60 000 images",
        body,
        before / now,
        "re-read / reuse: how many times faster the next run sets up",
        args.write,
        cmd="python benchmarks/trial_setup.py --data-root DATA/cifar10-jpg --write",
    )


if __name__ == "__main__":
    main()
