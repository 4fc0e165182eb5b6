"""Run the two seed benchmarks (6 losses x 5 seeds each) and write their reports.

    python benchmarks/seed_protocol.py DATA_ROOT [--out docs/results] [--only fmnist|cifar10]
        [--extra trainer=gpu ...]

DATA_ROOT is a folder prepared by ``shared/data/prepare.sh`` (``FashionMNIST/raw`` and
``cifar10-jpg/{train,test}``), or any folder holding Fashion-MNIST in torchvision's layout and
CIFAR-10 as an ImageFolder tree. Each sweep goes to ``multirun/<experiment>/`` (re-running
resumes it); the report (results.csv, summary.md, box plots, ROC curves) to ``OUT/<experiment>/``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from adabench.report import report

ROOT = Path(__file__).resolve().parents[1]
SWEEPS = {
    "fmnist": (
        "fmnist_sneaker_boot",
        lambda data: [f"dataset.root={data}", "dataset.download=false"],
    ),
    "cifar10": (
        "cifar10_deer_horse",
        # the JPEG export is read through dataset=folder with the cifar10 preset's classes
        lambda data: [
            "dataset=folder",
            f"dataset.root={Path(data) / 'cifar10-jpg'}",
            "dataset.normal=deer",
            "dataset.abnormal=horse",
            "dataset.image_size=32",
            "dataset.n_reference=8000",
            "dataset.n_normal_train=1000",
            "dataset.n_test_normal=1000",
            "dataset.n_test_abnormal=1000",
            "dataset.n_test_reference=1000",
        ],
    ),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("data_root")
    p.add_argument("--out", default=str(ROOT / "docs" / "results"))
    p.add_argument("--only", choices=sorted(SWEEPS), default=None)
    p.add_argument("--extra", nargs="*", default=[], help="more overrides for both sweeps")
    args = p.parse_args()
    for key, (experiment, data_args) in SWEEPS.items():
        if args.only and key != args.only:
            continue
        cmd = [
            sys.executable,
            str(ROOT / "train.py"),
            "-m",
            f"experiment={experiment}",
            *data_args(args.data_root),
            "trainer.enable_progress_bar=false",
            *args.extra,
        ]
        print("$", " ".join(cmd), flush=True)
        t0 = time.perf_counter()
        rc = subprocess.run(cmd, cwd=ROOT).returncode
        print(f"{experiment}: exit {rc} after {time.perf_counter() - t0:.0f} s", flush=True)
        report([ROOT / "multirun" / experiment], Path(args.out) / experiment)


if __name__ == "__main__":
    main()
