"""Does the data path show? Training steps fed by the real DataModule vs a pre-made tensor.

A: batches from ``AnomalyDataModule.train_dataloader()`` (uint8 tensors in memory, one gather
per batch) + the batched augmentation of ``on_after_batch_transfer``.
B: the same number of steps on one pre-made batch already in memory (no indexing, no
augmentation). Both run the same model step, interleaved. Also: the cost of decoding the
``folder`` CIFAR-10 tree (60 000 JPEGs) on first use vs reading the cache afterwards.

    python benchmarks/data_path.py --data-root DATA [--write]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch
from _common import DOCS, finish, machine, table
from hydra import compose, initialize_config_dir

from adabench.build import build_datamodule, build_module
from adabench.data.pools import load_pool
from adabench.data.sources import ImageFolder

CONF = str(DOCS.parents[1] / "conf")


def step_fn(module, opt):
    def step(x, y):
        loss = module.head(module.embedder(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def epoch_datamodule(dm, step, device) -> float:
    t0 = time.perf_counter()
    for x, y in dm.train_dataloader():
        x, y = dm.on_after_batch_transfer((x.to(device), y.to(device)), 0)
        step(x, y)
    return time.perf_counter() - t0


def epoch_premade(batch, n_steps, step) -> float:
    t0 = time.perf_counter()
    for _ in range(n_steps):
        step(*batch)
    return time.perf_counter() - t0


class _Training:
    training = True


def decode_vs_cache(root: Path) -> list[list[object]]:
    cfg = ImageFolder(32, 3, str(root))
    cache = Path(tempfile.mkdtemp(prefix="adabench-cache-"))
    try:
        t0 = time.perf_counter()
        n = sum(len(load_pool(s, cfg, cache)) for s in ("train", "test"))
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        for s in ("train", "test"):
            load_pool(s, cfg, cache)
        cached = time.perf_counter() - t0
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    return [
        ["decode JPEGs (first use)", n, f"{first:.2f}", f"{n / first:.0f}"],
        ["read cache", n, f"{cached:.2f}", f"{n / cached:.0f}"],
        ["speed-up", "", f"{first / cached:.1f}x", ""],
    ]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data-root", default=None)
    p.add_argument("--dataset", default="fashion_mnist")
    p.add_argument("--backbone", default="resnet18")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--write", action="store_true")
    args = p.parse_args()
    overrides = [f"dataset={args.dataset}", f"backbone={args.backbone}"]
    if args.data_root:
        overrides += [f"dataset.root={args.data_root}", "dataset.download=false"]
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dm = build_datamodule(cfg)
    dm.setup()
    dm.trainer = _Training()  # augmentation runs only while training
    torch.manual_seed(0)
    module = build_module(cfg, dm).to(device).train()
    opt = torch.optim.AdamW(module.parameters(), lr=1e-3)
    step = step_fn(module, opt)
    n_steps = len(dm.train_dataloader())
    bs = dm.batch_size
    x0 = dm.train_images[:bs].to(device).float().div(255)
    batch = (x0, dm.train_labels[:bs].to(device))
    epoch_premade(batch, 3, step)  # warm-up
    a, b = [], []
    for _ in range(args.rounds):
        a.append(epoch_datamodule(dm, step, device))
        b.append(epoch_premade(batch, n_steps, step))
    ta, tb = statistics.median(a) / n_steps, statistics.median(b) / n_steps
    ratio = tb / ta
    rows = [
        ["DataModule + batched augmentation", f"{ta * 1e3:.1f}", f"{bs / ta:.0f}"],
        ["pre-made tensor in memory", f"{tb * 1e3:.1f}", f"{bs / tb:.0f}"],
    ]
    out = table(["fed by", "ms/step", "images/s"], rows)
    head = f"{args.dataset}, {args.backbone}, batch {bs}, {n_steps} steps x {args.rounds} rounds"
    head += f"; {machine()}"
    cifar = Path(args.data_root or "") / "cifar10-jpg"
    if args.data_root and cifar.is_dir():
        out += "\n\n" + table(
            ["CIFAR-10 folder (60 000 JPEGs, 32x32)", "images", "seconds", "images/s"],
            decode_vs_cache(cifar),
        )
    finish(
        "data_path",
        "2. Data path",
        head,
        out,
        ratio,
        "DataModule / pre-made throughput",
        args.write,
    )


if __name__ == "__main__":
    main()
