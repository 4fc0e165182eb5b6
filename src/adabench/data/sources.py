"""Where a dataset's images come from: one class per kind of source, named by ``_target_``.

A source turns a split name (``train`` / ``test``) into an :class:`ImagePool` and says what
identifies that pool (for the decoded-pool cache). ``conf/dataset/<name>.yaml`` names its source
class with ``_target_`` and sets the source's parameters beside the split settings
(:data:`SPLIT_KEYS`, read by the DataModule). A new dataset is a source class here (or anywhere
importable) and one YAML file.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from adabench.config import build
from adabench.data.folder import class_folders, listing_fingerprint, load_image_folder
from adabench.data.images import ImagePool
from adabench.errors import ConfigError, DataError

# dataset keys that describe the split and the images, not the source (read by the DataModule)
SPLIT_KEYS = frozenset(
    {
        "name",
        "normal",
        "abnormal",
        "reference",
        "reference_root",
        "n_reference",
        "n_normal_train",
        "n_test_normal",
        "n_test_abnormal",
        "n_test_reference",
        "image_size",
        "channels",
        "pad_crop",
        "hflip",
    }
)


class ImageSource:
    """Base of the sources. ``image_size`` and ``channels`` come from the dataset config."""

    def __init__(self, image_size: int, channels: int) -> None:
        self.image_size, self.channels = int(image_size), int(channels)

    def load(self, split: str) -> ImagePool:
        """The ``train`` or ``test`` pool (any size and channel count: it is fitted after)."""
        raise NotImplementedError

    def identity(self, split: str) -> dict[str, Any]:
        """What identifies the decoded pool of ``split`` besides size and channels."""
        raise NotImplementedError

    def class_names(self) -> list[str] | None:
        """The class names, when they are known without loading the images (else ``None``).

        The DataModule checks the configured classes against them before anything is decoded.
        """
        return None


def _expand(root: str | os.PathLike) -> Path:
    return Path(os.path.expanduser(str(root)))


class Digits(ImageSource):
    """scikit-learn's bundled 8×8 digits; split per class into train/test by a fixed seed."""

    def __init__(
        self, image_size: int, channels: int, test_fraction: float = 0.3, holdout_seed: int = 0
    ) -> None:
        super().__init__(image_size, channels)
        self.test_fraction, self.holdout_seed = float(test_fraction), int(holdout_seed)

    def class_names(self) -> list[str]:
        """``0`` … ``9``."""
        return [str(i) for i in range(10)]

    def identity(self, split: str) -> dict[str, Any]:
        """The hold-out settings."""
        return {"holdout": [self.holdout_seed, self.test_fraction]}

    def load(self, split: str) -> ImagePool:
        """The train or test part of the bundled digits."""
        from sklearn.datasets import load_digits

        bunch = load_digits()
        images = torch.from_numpy(np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8))[:, None]
        labels = bunch.target.astype(np.int64)
        rng = np.random.default_rng(self.holdout_seed)
        is_test = np.zeros(len(labels), dtype=bool)
        for c in np.unique(labels):
            idx = rng.permutation(np.flatnonzero(labels == c))
            is_test[idx[: int(round(self.test_fraction * len(idx)))]] = True
        keep = is_test if split == "test" else ~is_test
        return ImagePool(
            images[torch.from_numpy(keep)],
            torch.from_numpy(labels[keep]),
            [str(i) for i in range(10)],
        )


class Torchvision(ImageSource):
    """A torchvision dataset class with ``train=True/False`` (MNIST, FashionMNIST, CIFAR10, …).

    Args:
        dataset: The class name in ``torchvision.datasets``.
        root: Folder that holds (or will hold) the data.
        download: Download when missing (needs internet).
    """

    def __init__(
        self, image_size: int, channels: int, dataset: str, root: str, download: bool = False
    ) -> None:
        super().__init__(image_size, channels)
        self.dataset, self.root, self.download = str(dataset), _expand(root), bool(download)

    def identity(self, split: str) -> dict[str, Any]:
        """The torchvision class and the resolved root."""
        return {"torchvision": self.dataset, "root": str(self.root.resolve())}

    def load(self, split: str) -> ImagePool:
        """Read (or download) the split; an actionable error when it is missing."""
        import torchvision.datasets as tvd

        cls = getattr(tvd, self.dataset)
        try:
            ds = cls(str(self.root), train=split == "train", download=self.download)
        except Exception as err:  # noqa: BLE001 - re-raised with the fix attached
            where = self.root / (
                cls.__name__ if cls.__name__ != "CIFAR10" else "cifar-10-batches-py"
            )
            how = (
                "the download failed (no internet?). Download it on a machine with internet "
                "and copy it here, or point dataset.root=/path/to/dir at a folder that holds it "
                "(with dataset.download=false)"
                if self.download
                else "download is off; add dataset.download=true (needs internet), or point "
                "dataset.root=/path/to/dir at a folder that holds it"
            )
            raise DataError(
                f"{self.dataset} {split} data not found under {where} ({type(err).__name__}: "
                f"{err}): {how}. Images as files instead: dataset=folder dataset.root=DIR with "
                f"DIR/{{train,test}}/<class>/<image>"
                + (
                    " (CIFAR-10 as JPEGs: dataset=cifar10_jpg)."
                    if self.dataset == "CIFAR10"
                    else "."
                )
            ) from err
        images = torch.as_tensor(np.asarray(ds.data))
        images = images[:, None] if images.ndim == 3 else images.permute(0, 3, 1, 2)
        labels = torch.as_tensor(np.asarray(ds.targets), dtype=torch.int64)
        return ImagePool(images.contiguous(), labels, list(ds.classes))


class ImageFolder(ImageSource):
    """Your own images: ``<root>/train/<class>/<image>`` and ``<root>/test/<class>/<image>``.

    Args:
        root: The folder holding ``train/`` and ``test/``.
        on_corrupt: ``error`` (fail listing unreadable files) or ``skip`` (skip and count them).
        decode_workers: Decoding threads (``None``: up to 8).
    """

    def __init__(
        self,
        image_size: int,
        channels: int,
        root: str,
        on_corrupt: str = "error",
        decode_workers: int | None = None,
    ) -> None:
        super().__init__(image_size, channels)
        self.root, self.on_corrupt = _expand(root), str(on_corrupt)
        self.workers = int(decode_workers or min(8, os.cpu_count() or 1))

    def class_names(self) -> list[str] | None:
        """The sub-folders of ``<root>/train`` (``None`` when it is missing: loading says so)."""
        return class_folders(self.root / "train") or None

    def identity(self, split: str) -> dict[str, Any]:
        """The folder and a fingerprint of its listing (names, sizes, modification times)."""
        folder = self.root / split
        return {
            "root": str(folder.resolve()),
            "files": listing_fingerprint(folder),
            "on_corrupt": self.on_corrupt,
        }

    def load(self, split: str) -> ImagePool:
        """Decode ``<root>/<split>``."""
        return load_image_folder(
            self.root / split, self.image_size, self.channels, self.on_corrupt, self.workers
        )


LAYOUTS = {"classes": None, "mvtec": "adabench.data.inspection.InspectionFolder"}


def build_source(dataset: Mapping[str, Any]) -> ImageSource:
    """The source of a ``dataset`` config: its ``_target_`` with the keys not in SPLIT_KEYS.

    ``layout: mvtec`` on a folder dataset reads the MVTec AD tree (train/good, test/good,
    test/<defects>) with :class:`adabench.data.inspection.InspectionFolder`.
    """
    spec = {k: v for k, v in dict(dataset).items() if k not in SPLIT_KEYS}
    layout = spec.pop("layout", "classes")
    if layout not in LAYOUTS:
        raise ConfigError(
            f"dataset.layout must be one of {', '.join(LAYOUTS)}, got {layout!r}, e.g. "
            "dataset.layout=mvtec for train/good, test/good, test/<defect>."
        )
    if LAYOUTS[layout] is not None:
        spec["_target_"] = LAYOUTS[layout]
    return build(
        spec,
        where="dataset",
        image_size=int(dataset["image_size"]),
        channels=int(dataset["channels"]),
    )


def data_fingerprint(source: ImageSource) -> dict[str, Any]:
    """What the run's images were, for metrics.json and the report's task identity.

    ``root``: the resolved folder the source reads (``None`` for bundled data); ``hash``: of
    what the images are, wherever they lie: for image folders every file's relative path and
    size (a copy elsewhere, or one whose modification times changed, is the same data; two
    folders that share a name are not), for other sources their settings without the root.
    """
    identity: dict[str, Any] = {"source": type(source).__qualname__}
    for split in ("train", "test"):
        identity[split] = {
            k: v
            for k, v in source.identity(split).items()
            if k not in ("root", "files") and not str(k).startswith("/")
        }
    root = getattr(source, "root", None)
    if isinstance(source, ImageFolder):
        identity["files"] = listing_fingerprint(Path(root), times=False)
    blob = json.dumps(identity, sort_keys=True, default=str)
    return {
        "root": str(Path(root).resolve()) if root is not None else None,
        "hash": hashlib.sha256(blob.encode()).hexdigest()[:16],
    }
