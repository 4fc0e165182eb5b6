"""Images/s of an adabench training epoch (Lightning) vs a hand-written PyTorch loop.

Same backbone, head, batch size, in-memory data, augmentation and thread count; epochs are
interleaved (Lightning, plain, Lightning, plain, ...) and the first epoch of each is dropped.

    python benchmarks/train_throughput.py --data-root DATA [--dataset fashion_mnist] [--write]
"""

from __future__ import annotations

import argparse
import statistics
import time

import lightning as L
import torch
from _common import DOCS, finish, machine, table
from hydra import compose, initialize_config_dir

from adabench.build import build_datamodule, build_module
from adabench.data.augment import augment_batch

CONF = str(DOCS.parents[1] / "conf")


class EpochTimer(L.Callback):
    def __init__(self) -> None:
        self.times: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.t0 = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.times.append(time.perf_counter() - self.t0)


def lightning_epochs(cfg, dm, epochs: int) -> list[float]:
    module = build_module(cfg, dm)
    timer = EpochTimer()
    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator=cfg.trainer.accelerator,
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=[timer],
        log_every_n_steps=cfg.trainer.log_every_n_steps,
        enable_progress_bar=True,
        precision=cfg.trainer.precision,
    )
    trainer.fit(module, datamodule=dm)
    return timer.times[1:]


def plain_epochs(cfg, dm, epochs: int) -> list[float]:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    module = build_module(cfg, dm).to(device)
    opt = module.configure_optimizers()
    opt = opt["optimizer"] if isinstance(opt, dict) else opt
    module.train()
    x_all, y_all = dm.train_images, dm.train_labels
    pad, hflip = int(dm.cfg.get("pad_crop") or 0), bool(dm.cfg.get("hflip"))
    bs, n = dm.batch_size, len(y_all)
    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(n)
        for i in range(0, n - bs + 1, bs):
            idx = perm[i : i + bs]
            x = augment_batch(x_all[idx].to(device), pad=pad, hflip=hflip)
            y = y_all[idx].to(device)
            loss = module.head(module.embedder(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return times[1:]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data-root", default=None, help="folder prepared by shared/data/prepare.sh")
    p.add_argument("--dataset", default="fashion_mnist")
    p.add_argument("--backbone", default="resnet18")
    p.add_argument("--loss", default="arcface")
    p.add_argument("--epochs", type=int, default=2, help="per round, the first one dropped")
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--write", action="store_true", help="write the table into docs/benchmarks.md")
    args = p.parse_args()
    overrides = [
        f"dataset={args.dataset}",
        f"backbone={args.backbone}",
        f"loss={args.loss}",
        f"batch_size={args.batch_size}",
    ]
    if args.data_root:
        overrides += [f"dataset.root={args.data_root}", "dataset.download=false"]
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    cfg.paths.output_dir = "/tmp/adabench-bench"
    dm = build_datamodule(cfg)
    dm.setup()
    n = (len(dm.train_labels) // args.batch_size) * args.batch_size
    lit, plain = [], []
    for _ in range(args.rounds):
        L.seed_everything(0, verbose=False)
        lit += lightning_epochs(cfg, dm, args.epochs)
        L.seed_everything(0, verbose=False)
        plain += plain_epochs(cfg, dm, args.epochs)
    lit_ips, plain_ips = n / statistics.median(lit), n / statistics.median(plain)
    ratio = lit_ips / plain_ips
    rows = [
        ["adabench (Lightning)", f"{statistics.median(lit):.3f}", f"{lit_ips:.1f}", len(lit)],
        ["plain PyTorch loop", f"{statistics.median(plain):.3f}", f"{plain_ips:.1f}", len(plain)],
    ]
    out = table(["loop", "median epoch s", "images/s", "epochs timed"], rows)
    head = (
        f"{args.dataset}, {args.backbone} + {args.loss}, batch {args.batch_size}, "
        f"{n} images/epoch; {machine()}"
    )
    finish(
        "train_throughput",
        "1. Training throughput",
        head,
        out,
        ratio,
        "adabench / plain",
        args.write,
    )


if __name__ == "__main__":
    main()
