"""bf16 autocast vs float32 training on the CPU, for the pretrained presets' trainable layers.

Separate processes (``_train_worker.py``), interleaved rounds, the same config but
``trainer.precision``: the pretrained EfficientNet-Lite0 at 96 px with stages 1-4 frozen and
cached, stage 5 + neck + head trained (the ``*_pretrained`` presets' recipe), on digits. Also the
same with every layer trained (``backbone.freeze=0``). The last line is bf16 / float32
throughput of the presets' recipe (> 1: bf16 is faster).

    python benchmarks/precision.py [--seconds 20] [--rounds 3] [--write]
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from pathlib import Path

from _common import ab_rows, finish, interleaved, machine, table

HERE = Path(__file__).resolve()
RECIPES = {
    "presets' recipe (stage 5 + head trained, trunk cached)": [
        "backbone.out_stage=5",
        "backbone.freeze=4",
    ],
    "every layer trained": ["backbone.freeze=0"],
}
COMMON = [
    "backbone=efficientnet_lite0",
    "dataset.channels=3",
    "dataset.image_size=96",
    "dataset.pad_crop=0",
    "batch_size=128",
    "loss=arcface",
]
ARMS = {"float32": "32-true", "bf16 autocast": "bf16-mixed"}


def main() -> None:
    from allocator import run  # one timed worker process

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--write", action="store_true")
    args = p.parse_args()
    load = os.getloadavg()[0]

    def cmd(extra: list[str], precision: str) -> list[str]:
        worker = str(HERE.parent / "_train_worker.py")
        overrides = [*COMMON, *extra, f"trainer.precision={precision}"]
        return [sys.executable, worker, str(args.seconds), *overrides]

    cases = {
        recipe: {arm: functools.partial(run, "tuned", cmd(extra, p)) for arm, p in ARMS.items()}
        for recipe, extra in RECIPES.items()
    }
    results = interleaved(args.rounds, cases)
    rows, ratios = ab_rows(results, list(RECIPES), "float32", "bf16 autocast")
    head = (
        f"EfficientNet-Lite0 (ImageNet), 96 px, batch 128, digits; median of {args.rounds} "
        f"interleaved rounds, {args.seconds:.0f} s each; {machine()}; load before: {load:.2f}"
    )
    body = table(["training", "float32 img/s", "bf16 img/s", "bf16 / float32"], rows)
    finish(
        "precision",
        "10. bf16 autocast on the CPU",
        head,
        body,
        ratios[next(iter(RECIPES))],
        "bf16 / float32 training throughput, presets' recipe",
        args.write,
    )


if __name__ == "__main__":
    main()
