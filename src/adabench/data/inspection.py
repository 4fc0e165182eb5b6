"""OK/NG inspection images: the MVTec AD layout, and a generated tree of textures with defects.

The layout (``dataset=inspection``, or ``dataset=folder dataset.layout=mvtec``)::

    <root>/train/good/*.png          normal images to train on
    <root>/test/good/*.png           normal test images
    <root>/test/<defect type>/*.png  abnormal test images (every type is one class, "defect")
    <root>/val/<defect type>/*.png   optional: a few known defects for few-shot validation
    <root>/ground_truth/...          ignored (pixel masks)

There are no reference classes in such a tree: the losses take theirs from another dataset
(``dataset.reference``, :mod:`adabench.data.reference`). Without ``val/``, the validation
anomalies are synthetic (cut-paste copies of held-out good images).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from adabench.data.folder import listing_fingerprint, load_image_folder
from adabench.data.images import ImagePool
from adabench.data.sources import ImageFolder
from adabench.errors import DataError

GOOD, DEFECT = "good", "defect"


class InspectionFolder(ImageFolder):
    """An MVTec-AD-style tree: ``train/good``, ``test/good``, ``test/<defects>``, ``val/``.

    Args:
        root: The tree's folder.
        good: The name of the folder of normal images.
        on_corrupt: ``error`` (fail listing unreadable files) or ``skip``.
        decode_workers: Decoding threads.
    """

    def __init__(
        self,
        image_size: int,
        channels: int,
        root: str,
        good: str = GOOD,
        on_corrupt: str = "error",
        decode_workers: int | None = None,
    ) -> None:
        super().__init__(image_size, channels, root, on_corrupt, decode_workers)
        self.good = str(good)

    def class_names(self) -> list[str]:
        """``defect`` and ``good``: every defect type is one class."""
        return sorted([DEFECT, GOOD])

    def identity(self, split: str) -> dict[str, Any]:
        """The folders this split reads and their listings."""
        folders = self._folders(split)
        return {
            "layout": "mvtec",
            "good": self.good,
            "on_corrupt": self.on_corrupt,
            **{str(f.resolve()): listing_fingerprint(f) for f in folders},
        }

    def _folders(self, split: str) -> list[Path]:
        if split == "train":
            val = self.root / "val"
            return [self.root / "train"] + ([val] if val.is_dir() else [])
        return [self.root / "test"]

    def load(self, split: str) -> ImagePool:
        """``train``: the good images (+ ``val/`` defects); ``test``: good + every defect type."""
        parts = [(folder, self._read(folder)) for folder in self._folders(split)]
        if split == "train" and self.good not in parts[0][1].classes:
            raise DataError(
                f"{self.root / 'train'} has no '{self.good}' folder: the inspection layout "
                f"expects {self.root}/train/{self.good}/<image> (or set dataset.good=<name>)."
            )
        classes = self.class_names()
        images, labels, ids, skipped = [], [], [], []
        for folder, pool in parts:
            is_good = torch.tensor([pool.classes[i] == self.good for i in pool.labels.tolist()])
            everything = torch.ones(len(pool), dtype=torch.bool)
            keep = is_good if folder.name == "train" else everything  # train/: good ones only
            label = torch.where(is_good, classes.index(GOOD), classes.index(DEFECT))
            images.append(pool.images[keep])
            labels.append(label[keep])
            ids += [f"{folder.name}/{i}" for i, k in zip(pool.ids, keep.tolist(), strict=True) if k]
            skipped += pool.skipped
        return ImagePool(torch.cat(images), torch.cat(labels), classes, skipped, ids=ids)

    def _read(self, folder: Path) -> ImagePool:
        return load_image_folder(
            folder, self.image_size, self.channels, self.on_corrupt, self.workers
        )


REFERENCE_KINDS = ("stripes", "diagonal", "checks", "blobs")


def write_inspection_tree(
    root: str | os.PathLike,
    n_good: int = 60,
    n_test_good: int = 20,
    n_test_defect: int = 10,
    n_val_defect: int = 0,
    n_reference: int = 0,
    size: int = 64,
    seed: int = 0,
) -> Path:
    """Write an MVTec-style tree of woven textures, with scratches and spots on the defects.

    Every good image is the same woven texture (two sine gratings) shifted by a little and
    with noise, as parts photographed in a fixture; a ``scratch`` is a dark line across it, a
    ``spot`` a bright disc. With ``n_reference``, ``other_textures/<kind>/`` holds images of
    four other textures (stripes, diagonal stripes, checks, blobs): a reference pool from
    elsewhere (``dataset.reference=<root>/other_textures``). The same seed writes the same
    files. Used by the tests and by docs/inspection.md's walk-through.

    Args:
        root: Folder to write (created).
        n_good: Good training images.
        n_test_good: Good test images.
        n_test_defect: Test images of each defect type.
        n_val_defect: Images of each defect type under ``val/`` (0: no ``val/`` folder).
        n_reference: Images of each other texture under ``other_textures/`` (0: none).
        size: Image side in pixels.
        seed: Seed of every random choice.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    plan = [("train/good", "good", n_good), ("test/good", "good", n_test_good)]
    for defect in ("scratch", "spot"):
        plan.append((f"test/{defect}", defect, n_test_defect))
        if n_val_defect:
            plan.append((f"val/{defect}", defect, n_val_defect))
    if n_reference:
        plan += [(f"other_textures/{kind}", kind, n_reference) for kind in REFERENCE_KINDS]
    for folder, kind, n in plan:
        (root / folder).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            _texture(rng, size, kind).save(root / folder / f"{i:03d}.png")
    (root / "ground_truth").mkdir(exist_ok=True)  # as in MVTec AD: ignored
    return root


def _texture(rng: np.random.Generator, size: int, kind: str) -> Image.Image:
    y, x = np.mgrid[0:size, 0:size] / size
    jitter = rng.uniform(-0.3, 0.3, 2)  # a part in its fixture: shifted by a little
    pattern = {
        "stripes": lambda: 2 * np.sin(2 * np.pi * 4 * y + jitter[0]),
        "diagonal": lambda: 2 * np.sin(2 * np.pi * 5 * (x + y) + jitter[0]),
        "checks": lambda: 2 * np.sign(np.sin(2 * np.pi * 3 * x) * np.sin(2 * np.pi * 3 * y)),
        "blobs": lambda: _blobs(rng, size),
    }.get(
        kind, lambda: np.sin(2 * np.pi * 6 * x + jitter[0]) + np.sin(2 * np.pi * 6 * y + jitter[1])
    )
    pixels = 128 + 40 * pattern() + rng.normal(0, 8, (size, size))
    rgb = np.stack([pixels, pixels * 0.9 + 10, pixels * 0.8 + 20], -1)
    img = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    if kind == "scratch":
        (x0, x1), (y0, y1) = rng.uniform(0, size, 2), rng.uniform(0, size, 2)
        draw.line([(x0, y0), (x1, y1)], fill=(20, 20, 20), width=max(1, size // 24))
    elif kind == "spot":
        cx, cy = rng.uniform(size * 0.2, size * 0.8, 2)
        r = size * rng.uniform(0.06, 0.12)
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=(250, 240, 200))
    return img


def _blobs(rng: np.random.Generator, size: int) -> np.ndarray:
    coarse = rng.normal(0, 1, (6, 6))
    up = np.kron(coarse, np.ones((size // 6 + 1, size // 6 + 1)))[:size, :size]
    return np.clip(up, -2, 2)


def main(argv: list[str] | None = None) -> int:
    """``adabench example-data DEST``: write the generated inspection tree."""
    import argparse

    p = argparse.ArgumentParser(
        prog="adabench example-data",
        description="Write an MVTec-style OK/NG tree of generated textures with drawn defects.",
    )
    p.add_argument("dest", help="folder to write (train/good, test/good, test/<defect>, val/)")
    p.add_argument("--size", type=int, default=64, help="image side in pixels (default 64)")
    p.add_argument("--good", type=int, default=60, help="good training images (default 60)")
    p.add_argument("--val-defects", type=int, default=5, help="val/ images per defect type")
    p.add_argument(
        "--reference", type=int, default=50, help="other_textures/ images per texture kind"
    )
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    root = write_inspection_tree(
        args.dest,
        n_good=args.good,
        n_val_defect=args.val_defects,
        n_reference=args.reference,
        size=args.size,
        seed=args.seed,
    )
    print(f"wrote {root}: train/good, test/good, test/scratch, test/spot, val/, other_textures/")
    return 0
