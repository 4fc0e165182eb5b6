"""Run the seed benchmarks (losses + no-training baselines x 5 seeds) and write their reports.

    python benchmarks/seed_protocol.py DATA_ROOT [--out docs/results]
        [--only fmnist_pretrained cifar10_pretrained fmnist cifar10] [--extra trainer=gpu ...]

DATA_ROOT is a folder prepared by ``shared/data/prepare.sh`` (``FashionMNIST/raw`` and
``cifar10-jpg/{train,test}``), or any folder holding Fashion-MNIST in torchvision's layout and
CIFAR-10 as an ImageFolder tree. Each sweep goes to ``multirun/<experiment>/`` (re-running
resumes it); the report (results.csv, summary.md, box plots, ROC curves) to ``OUT/<experiment>/``,
with the sweep's wall time and load in ``OUT/<experiment>/sweep_wall.json``. The ``*_pretrained``
sweeps fine-tune the ImageNet EfficientNet-Lite0 (8 rows x 5 seeds); the others train
MobileNetV2 from scratch.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from adabench.report import report

ROOT = Path(__file__).resolve().parents[1]


def fmnist_data(data: str) -> list[str]:
    return [f"dataset.root={data}", "dataset.download=false"]


def cifar10_data(data: str) -> list[str]:
    """The JPEG export (``dataset=cifar10_jpg``: the cifar10 classes and counts; the preset's
    image size, channels and augmentation still apply)."""
    return ["dataset=cifar10_jpg", f"dataset.root={Path(data) / 'cifar10-jpg'}"]


SWEEPS = {
    "fmnist_pretrained": ("fmnist_sneaker_boot_pretrained", fmnist_data),
    "cifar10_pretrained": ("cifar10_deer_horse_pretrained", cifar10_data),
    "fmnist": ("fmnist_sneaker_boot", fmnist_data),
    "cifar10": ("cifar10_deer_horse", cifar10_data),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("data_root")
    p.add_argument("--out", default=str(ROOT / "docs" / "results"))
    p.add_argument("--only", nargs="*", choices=sorted(SWEEPS), default=None)
    p.add_argument("--extra", nargs="*", default=[], help="more overrides for both sweeps")
    args = p.parse_args()
    for key, (experiment, data_args) in SWEEPS.items():
        if args.only and key not in args.only:
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
        t0, load = time.perf_counter(), os.getloadavg()[0]
        rc = subprocess.run(cmd, cwd=ROOT).returncode
        wall = time.perf_counter() - t0
        print(f"{experiment}: exit {rc} after {wall:.0f} s", flush=True)
        out = Path(args.out) / experiment
        report([ROOT / "multirun" / experiment], out)
        info = {
            "command": " ".join(cmd[1:]),
            "exit": rc,
            "wall_s": round(wall, 1),
            "load_before": load,
            "load_after": os.getloadavg()[0],
            "cpus": os.cpu_count(),
        }
        (out / "sweep_wall.json").write_text(json.dumps(info, indent=2) + "\n")


if __name__ == "__main__":
    main()
