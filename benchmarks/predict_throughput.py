"""adabench predict vs the embedder's own forward pass, at the same batch size.

    python benchmarks/predict_throughput.py [--detector DIR] [--images 2000] [--rounds 3] [--write]

A: the exported embedder on images already decoded into one uint8 tensor (the floor).
B: ``adabench.detector.predict`` on the same images as PNG files: decoding (threads), the
   embedder, the FAISS k-NN search with its exact float64 re-ranking, the thresholds.
Both in batches of the detector's ``eval_batch_size``; interleaved A, B, A, B; medians.
Without ``--detector``, a detector is trained first (1 epoch, ResNet-18 at 64 px) on the
generated inspection tree (``adabench example-data``). Target: B/A >= 0.8.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import finish, machine, table

ROOT = Path(__file__).resolve().parents[1]


def make_detector(work: Path) -> Path:
    from adabench.data.inspection import write_inspection_tree

    root = write_inspection_tree(work / "parts", n_good=200, n_val_defect=5, size=64)
    cmd = [
        sys.executable,
        str(ROOT / "train.py"),
        "dataset=inspection",
        f"dataset.root={root}",
        "dataset.n_reference=500",
        "trainer.max_epochs=1",
        "logger=none",
        "save_detector=true",
        f"hydra.run.dir={work / 'run'}",
        "trainer.enable_progress_bar=false",
    ]
    subprocess.run(cmd, check=True, cwd=work)
    return work / "run" / "detector"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--detector", default=None, help="a detector folder (default: train one)")
    p.add_argument("--images", type=int, default=2000, help="images to predict")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = p.parse_args()
    from PIL import Image

    from adabench.detector import Detector, predict

    print(f"load average before: {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        folder = Path(args.detector) if args.detector else make_detector(work)
        detector = Detector.load(folder)
        size = int(detector.spec["preprocessing"]["image_size"])
        channels = int(detector.spec["preprocessing"]["channels"])
        batch = int(detector.spec.get("eval_batch_size") or 512)
        rng = np.random.default_rng(0)
        images = rng.integers(0, 256, (args.images, channels, size, size), dtype=np.uint8)
        files = work / "incoming"
        files.mkdir()
        paths = []
        for i, img in enumerate(images):
            path = files / f"{i:05d}.png"
            Image.fromarray(img.transpose(1, 2, 0).squeeze()).save(path)
            paths.append(path)
        tensor = torch.from_numpy(images)
        forward, full = [], []
        for r in range(args.rounds):
            t0 = time.perf_counter()
            detector.embed(tensor)
            forward.append(args.images / (time.perf_counter() - t0))
            t0 = time.perf_counter()
            rows, bad = predict(detector, paths, batch_size=batch, progress=False)
            full.append(args.images / (time.perf_counter() - t0))
            assert len(rows) == args.images and not bad
            print(f"round {r}: forward {forward[-1]:.0f} img/s, predict {full[-1]:.0f} img/s")
        if not args.detector:
            shutil.rmtree(work / "parts", ignore_errors=True)
    a, b = statistics.median(forward), statistics.median(full)
    head = (
        f"{args.images} PNG images of {channels}x{size}x{size}, batch {batch}, "
        f"{detector.spec['provenance']['config']['backbone']['name']}; {machine()}; "
        f"{args.rounds} interleaved rounds; load average {os.getloadavg()[0]:.2f}"
    )
    body = table(
        ["what", "images/s (median)"],
        [
            ["A: embedder forward on decoded tensors", f"{a:.0f}"],
            ["B: adabench predict on files (decode + embed + k-NN)", f"{b:.0f}"],
        ],
    )
    finish("predict_throughput", "Predict throughput", head, body, b / a, "B / A", args.write)


if __name__ == "__main__":
    main()
