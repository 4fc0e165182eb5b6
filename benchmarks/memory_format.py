"""channels_last vs contiguous: training step time of each shipped backbone on the CPU/GPU.

The memory format is a pure speed switch (``backbone.channels_last``); this measures which
setting each backbone config should ship with. Interleaved, median of several steps.

    python benchmarks/memory_format.py [--size 28] [--channels 1] [--write]
"""

from __future__ import annotations

import argparse
import statistics
import time

import timm
import torch
from _common import finish, machine, table


def step_time(name: str, channels_last: bool, size: int, channels: int, batch: int, steps: int):
    torch.manual_seed(0)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = timm.create_model(name, num_classes=10, in_chans=channels).to(device)
    x = torch.randn(batch, channels, size, size, device=device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters())
    times = []
    for i in range(steps + 2):
        t0 = time.perf_counter()
        loss = model(x).logsumexp(1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= 2:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument(
        "--backbones", nargs="+", default=["mobilenetv2_050", "resnet18", "efficientnet_b0"]
    )
    p.add_argument("--size", type=int, default=28)
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--write", action="store_true")
    args = p.parse_args()
    rows, best = [], {}
    for name in args.backbones:
        cont = step_time(name, False, args.size, args.channels, args.batch, args.steps)
        last = step_time(name, True, args.size, args.channels, args.batch, args.steps)
        best[name] = cont / last
        rows.append([name, f"{cont * 1e3:.0f}", f"{last * 1e3:.0f}", f"{cont / last:.2f}x"])
    out = table(["backbone", "contiguous ms/step", "channels_last ms/step", "speed-up"], rows)
    head = f"batch {args.batch} of {args.channels}x{args.size}x{args.size}; {machine()}"
    finish(
        "memory_format",
        "5. Memory format (channels_last)",
        head,
        out,
        best[args.backbones[0]],
        f"channels_last speed-up, {args.backbones[0]}",
        args.write,
    )


if __name__ == "__main__":
    main()
