"""Load a dataset's train and test pools as uint8 ``[N, C, H, W]`` tensors, decoded once, cached."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from adabench.errors import ConfigError, DataError, choices_hint
from adabench.io import atomic_write

DATASETS = ("digits", "mnist", "fashion_mnist", "cifar10", "folder")
CACHE_VERSION = 1


@dataclass
class ImagePool:
    """Decoded images of one dataset split.

    Attributes:
        images: ``uint8`` tensor ``[N, C, H, W]``.
        labels: ``int64`` tensor ``[N]`` of class indices into ``classes``.
        classes: Class names, by index.
        skipped: Files that could not be read and were skipped (``on_corrupt: skip``).
        key: Its :func:`cache_key` (the pool's identity in caches), when it was computed.
    """

    images: Tensor
    labels: Tensor
    classes: list[str]
    skipped: list[str] = field(default_factory=list)
    key: str | None = None

    def __len__(self) -> int:
        return len(self.labels)


def fit_images(images: Tensor, size: int, channels: int) -> Tensor:
    """Resize a uint8 ``[N, C, H, W]`` batch to ``size``×``size`` and ``channels`` channels."""
    if channels not in (1, 3):
        raise ConfigError(f"dataset.channels must be 1 or 3, got {channels}.")
    if images.shape[1] != channels:
        if channels == 3:
            images = images.expand(-1, 3, -1, -1)
        else:
            weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
            images = (images.float() * weights).sum(1, keepdim=True).round().to(torch.uint8)
    if images.shape[-2:] != (size, size):
        chunks = []
        for chunk in images.split(4096):
            out = F.interpolate(chunk.float(), size=(size, size), mode="bilinear", antialias=True)
            chunks.append(out.round().clamp(0, 255).to(torch.uint8))
        images = torch.cat(chunks)
    return images.contiguous()


# --------------------------------------------------------------------------- built-in sources
def _digits(split: str, cfg: dict) -> ImagePool:
    """scikit-learn's bundled 8×8 digits; split per class into train/test by a fixed seed."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.from_numpy(np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8))[:, None]
    labels = bunch.target.astype(np.int64)
    rng = np.random.default_rng(int(cfg.get("holdout_seed", 0)))
    frac = float(cfg.get("test_fraction", 0.3))
    is_test = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        is_test[idx[: int(round(frac * len(idx)))]] = True
    keep = is_test if split == "test" else ~is_test
    return ImagePool(
        images[torch.from_numpy(keep)], torch.from_numpy(labels[keep]), [str(i) for i in range(10)]
    )


_TORCHVISION = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST", "cifar10": "CIFAR10"}


def _torchvision(name: str) -> Callable[[str, dict], ImagePool]:
    def load(split: str, cfg: dict) -> ImagePool:
        import torchvision.datasets as tvd

        cls = getattr(tvd, _TORCHVISION[name])
        root = Path(os.path.expanduser(str(cfg["root"])))
        download = bool(cfg.get("download", False))
        try:
            ds = cls(str(root), train=split == "train", download=download)
        except Exception as err:  # noqa: BLE001 - re-raised with the fix attached
            where = root / (cls.__name__ if name != "cifar10" else "cifar-10-batches-py")
            how = (
                "the download failed (no internet?); download it on a machine with internet "
                "and copy it there, or"
                if download
                else "download is off; add dataset.download=true (needs internet), or"
            )
            raise DataError(
                f"{_TORCHVISION[name]} {split} data not found under {where} ({type(err).__name__}: "
                f"{err}). {how} point dataset.root=/path/to/dir at a folder that holds it."
            ) from err
        data = ds.data
        images = torch.as_tensor(np.asarray(data))
        images = images[:, None] if images.ndim == 3 else images.permute(0, 3, 1, 2)
        labels = torch.as_tensor(np.asarray(ds.targets), dtype=torch.int64)
        return ImagePool(images.contiguous(), labels, list(ds.classes))

    return load


def _folder(split: str, cfg: dict) -> ImagePool:
    from adabench.data.folder import load_image_folder

    return load_image_folder(
        Path(os.path.expanduser(str(cfg["root"]))) / split,
        size=int(cfg["image_size"]),
        channels=int(cfg["channels"]),
        on_corrupt=str(cfg.get("on_corrupt", "error")),
        workers=int(cfg.get("decode_workers") or min(8, os.cpu_count() or 1)),
    )


LOADERS: dict[str, Callable[[str, dict], ImagePool]] = {
    "digits": _digits,
    "mnist": _torchvision("mnist"),
    "fashion_mnist": _torchvision("fashion_mnist"),
    "cifar10": _torchvision("cifar10"),
    "folder": _folder,
}


# --------------------------------------------------------------------------- cache
def cache_key(split: str, cfg: dict) -> str:
    """Hash of everything that changes a decoded pool (source, root, size, channels, files)."""
    name = cfg["name"]
    parts: dict = {
        "v": CACHE_VERSION,
        "name": name,
        "split": split,
        "size": int(cfg["image_size"]),
        "channels": int(cfg["channels"]),
    }
    if name == "digits":
        parts["holdout"] = [cfg.get("holdout_seed", 0), cfg.get("test_fraction", 0.3)]
    elif name == "folder":
        from adabench.data.folder import listing_fingerprint

        root = Path(os.path.expanduser(str(cfg["root"]))) / split
        parts["root"] = str(root.resolve())
        parts["files"] = listing_fingerprint(root)
        parts["on_corrupt"] = cfg.get("on_corrupt", "error")
    else:
        parts["root"] = str(Path(os.path.expanduser(str(cfg["root"]))).resolve())
    blob = json.dumps(parts, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


def load_pool(split: str, cfg: dict, cache_dir: str | Path | None = None) -> ImagePool:
    """Load one split (``train`` or ``test``) of the dataset ``cfg`` describes.

    Decoding happens once; the result is cached (atomically) under ``cache_dir`` keyed by
    :func:`cache_key`, and later calls read the cache.

    Raises:
        ConfigError: unknown dataset name or bad image size / channels.
        DataError: data missing or unreadable.
    """
    name = cfg.get("name")
    if name not in LOADERS:
        raise ConfigError(
            f"Unknown dataset '{name}'. Valid choices: {', '.join(DATASETS)}."
            f"{choices_hint(name, DATASETS)}"
        )
    size, channels = int(cfg["image_size"]), int(cfg["channels"])
    if size < 8:
        raise ConfigError(f"dataset.image_size must be >= 8, got {size}.")
    if channels not in (1, 3):
        raise ConfigError(f"dataset.channels must be 1 or 3, got {channels}.")
    path = key = None
    if cache_dir:
        key = cache_key(split, cfg)
        path = Path(cache_dir) / f"{name}-{split}-{key}.pt"
        if path.exists():
            try:
                blob = torch.load(path, weights_only=True)
                return ImagePool(
                    blob["images"],
                    blob["labels"],
                    list(blob["classes"]),
                    list(blob["skipped"]),
                    key,
                )
            except Exception:  # noqa: BLE001 - an unreadable cache is rebuilt, never trusted
                path.unlink(missing_ok=True)
    pool = LOADERS[name](split, cfg)
    pool.images = fit_images(pool.images, size, channels)
    pool.key = key
    if path is not None:
        blob = {
            "images": pool.images,
            "labels": pool.labels,
            "classes": pool.classes,
            "skipped": pool.skipped,
        }
        atomic_write(path, lambda tmp: torch.save(blob, tmp))
    return pool
