"""A reference pool from another dataset (outlier exposure) for data without reference classes.

``dataset.reference`` usually names classes of the dataset itself. When it names no class of
it but another dataset adabench reads, the loss heads take their reference classes from there:

- a dataset config name (``digits``, ``cifar10``, ``cifar10_jpg``, ``fashion_mnist``, …): its
  training split, with ``dataset.reference_root`` as its root where it needs one;
- a folder path: ``<path>/<class>/<image>``, every sub-folder a reference class.

Its images are resized to the dataset's ``image_size`` and ``channels``, appended to the
training pool as classes ``<name>:<class>`` with ids ``reference:<name>/<id>`` (recorded in
split.json like any reference image), and drawn by ``dataset.n_reference`` like reference
classes of the dataset itself. They are never in a test part.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from adabench.data.folder import listing_fingerprint, load_image_folder
from adabench.data.images import ImagePool
from adabench.data.sources import ImageSource, build_source
from adabench.errors import ConfigError

PREFIX = "reference:"


class ReferenceFolder(ImageSource):
    """Images of ``<root>/<class>/<image>`` (no train/test split), for a reference pool."""

    def __init__(self, image_size: int, channels: int, root: str) -> None:
        super().__init__(image_size, channels)
        self.root = Path(root).expanduser()

    def identity(self, split: str) -> dict[str, Any]:
        """The folder and its listing."""
        return {"root": str(self.root.resolve()), "files": listing_fingerprint(self.root)}

    def load(self, split: str) -> ImagePool:
        """Every image below the folder (``split`` is ignored: it is all reference)."""
        return load_image_folder(self.root, self.image_size, self.channels)


def external_name(spec: Any, classes: Sequence[str] | None, config_dir: str | Path) -> str | None:
    """The dataset or folder ``dataset.reference`` names, or ``None`` when it names classes."""
    if not isinstance(spec, str) or (classes is not None and spec in classes):
        return None
    if (Path(config_dir) / "dataset" / f"{spec}.yaml").exists() or Path(spec).expanduser().is_dir():
        return spec
    return None


def reference_source(
    spec: str, dataset: Mapping[str, Any], config_dir: str | Path
) -> tuple[str, ImageSource]:
    """(short name, source) of the external reference pool ``spec`` names."""
    size, channels = int(dataset["image_size"]), int(dataset["channels"])
    path = Path(spec).expanduser()
    if path.is_dir() and not (Path(config_dir) / "dataset" / f"{spec}.yaml").exists():
        return path.name, ReferenceFolder(size, channels, str(path))
    from omegaconf import OmegaConf

    node = OmegaConf.to_container(OmegaConf.load(Path(config_dir) / "dataset" / f"{spec}.yaml"))
    assert isinstance(node, dict)
    node.pop("defaults", None)
    node.update(image_size=size, channels=channels)
    if dataset.get("reference_root"):
        node["root"] = str(dataset["reference_root"])
    if node.get("root") == "???":
        raise ConfigError(
            f"dataset.reference={spec} needs its root: add dataset.reference_root=/path/to/it."
        )
    return spec, build_source(_resolved(node))


def _resolved(node: dict) -> dict:
    """A dataset YAML's values with ``${…}`` interpolations of other config groups resolved."""
    from omegaconf import OmegaConf

    from adabench.config import config_dir

    paths = OmegaConf.load(Path(config_dir()) / "train.yaml").get("paths") or {}
    where = {k: paths[k] for k in ("cache_dir", "data_dir") if k in paths}  # what datasets use
    cfg = OmegaConf.create({"paths": where, "dataset": node})
    return OmegaConf.to_container(cfg, resolve=True)["dataset"]  # type: ignore[index]


def with_reference(train: ImagePool, name: str, reference: ImagePool) -> ImagePool:
    """``train`` with the reference pool's images appended as classes ``<name>:<class>``."""
    if reference.images.shape[1:] != train.images.shape[1:]:
        raise ConfigError(
            f"dataset.reference={name}: its images are {tuple(reference.images.shape[1:])}, "
            f"the dataset's {tuple(train.images.shape[1:])}."
        )
    offset = len(train.classes)
    ids = train.ids or [str(i) for i in range(len(train))]
    ref_ids = reference.ids or [str(i) for i in range(len(reference))]
    key = hashlib.sha256(f"{train.key}+{name}:{reference.key}".encode()).hexdigest()[:20]
    return ImagePool(
        torch.cat([train.images, reference.images]),
        torch.cat([train.labels, reference.labels + offset]),
        [*train.classes, *(f"{name}:{c}" for c in reference.classes)],
        train.skipped + reference.skipped,
        key if train.key and reference.key else None,
        [*ids, *(f"{PREFIX}{name}/{i}" for i in ref_ids)],
    )
