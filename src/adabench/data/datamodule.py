"""Lightning DataModule: pools decoded once into memory, split, batched and augmented on device."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import BatchSampler, DataLoader, RandomSampler

from adabench.config import check_types
from adabench.console import say
from adabench.data.audit import split_record
from adabench.data.augment import augment_batch, two_views
from adabench.data.batching import BatchTensors
from adabench.data.folder import UnreadableImages
from adabench.data.images import ImagePool, align_classes, channel_stats
from adabench.data.pools import cache_key, load_pool
from adabench.data.protocols import Anomaly, Protocol
from adabench.data.reference import external_name, reference_source, with_reference
from adabench.data.sources import ImageSource, build_source, data_fingerprint
from adabench.data.splits import Split, SplitCounts, training_labels
from adabench.data.validation import validation_images

_NONE = np.empty(0, dtype=np.int64)


class AnomalyDataModule(L.LightningDataModule):
    """Reference + normal training data, normal + abnormal test data, for one dataset config.

    Args:
        dataset: The ``dataset`` config group as a mapping: its source (``_target_`` and the
            source's parameters, :mod:`adabench.data.sources`) and the split settings.
        seed: Seed of the split and of the shuffling.
        batch_size: Training batch size.
        eval_batch_size: Batch size for embedding.
        cache_dir: Where decoded pools are cached (``None`` disables the cache).
        protocol: How the pools are split and what is measured (a
            :class:`~adabench.data.protocols.Protocol`).
        views, train_normal_only: Two-view augmentation of each training batch, and training
            on the normal images alone (self-supervised heads' ``data_needs``).
    """

    def __init__(
        self,
        dataset: Mapping[str, Any],
        seed: int = 0,
        batch_size: int = 128,
        eval_batch_size: int = 512,
        cache_dir: str | None = None,
        protocol: Protocol | None = None,
        views: dict[str, Any] | None = None,
        train_normal_only: bool = False,
    ) -> None:
        super().__init__()
        self.cfg = dict(dataset)
        counts = {k: self.cfg[k] for k in SplitCounts.__dataclass_fields__ if k in self.cfg}
        check_types(SplitCounts, counts, "dataset")  # a bad count fails before any decoding
        self.protocol = protocol if protocol is not None else Anomaly(validation=False)
        self.source = build_source(self.cfg)
        self.reference = self._external_reference()
        if self.reference is not None:  # its classes are all the reference there is
            self.cfg["reference"] = None
        self.seed, self.batch_size = int(seed), int(batch_size)
        self.eval_batch_size, self.cache_dir = int(eval_batch_size), cache_dir
        self.split: Split | None = None
        self.class_names: list[str] = []
        self.skipped: list[str] = []
        self.inputs = "images"  # or "trunk": the image tensors were replaced by trunk outputs
        self.views, self.train_normal_only = views, train_normal_only
        self.train_flipped: Tensor | None = None
        self._pixel_stats: tuple[list[float], list[float]] | None = None

    # ------------------------------------------------------------------ set-up
    def _external_reference(self) -> tuple[str, ImageSource] | None:
        """The other dataset ``dataset.reference`` names, when it names no class of this one."""
        from adabench.config import config_dir

        spec, conf = self.cfg.get("reference"), config_dir()
        name = external_name(spec, self.source.class_names(), conf)
        if name is None:
            return None
        short, source = reference_source(name, self.cfg, conf)
        self.reference_name = short
        return short, source

    def _load_pools(self, name: str) -> tuple[ImagePool, ImagePool]:
        """The train and test pools; unreadable images of both are named in one error."""
        pools, unreadable = [], []
        for split in ("train", "test"):
            try:
                pools.append(load_pool(split, self.source, self.cache_dir, name))
            except UnreadableImages as err:
                unreadable.append(err)
        if unreadable:
            raise UnreadableImages.joined(unreadable)
        train, test = pools
        if self.reference is not None:  # a reference pool from another dataset
            name, source = self.reference
            outside = load_pool("train", source, self.cache_dir, f"ref-{name}")
            train = with_reference(train, name, outside)
        return train, align_classes(train, test)

    def setup(self, stage: str | None = None) -> None:
        """Load (or read cached) pools and draw the split; idempotent."""
        if self.split is not None:
            return
        names = self.source.class_names()
        if names is not None:  # fail before decoding
            self.protocol.check_classes(self.cfg, names)
        train, test = self._load_pools(str(self.cfg.get("name", "pool")))
        self.class_names = train.classes
        self.pool_keys = {"train": train.key, "test": test.key}
        self.pool_ids = {"train": train.ids, "test": test.ids}
        self.skipped = train.skipped + test.skipped
        if self.skipped:
            say(
                f"[adabench] {len(self.skipped)} unreadable image(s) skipped "
                f"(dataset.on_corrupt=skip): {len(train.skipped)} in train, "
                f"{len(test.skipped)} in test; listed in the run's metrics.json (data.skipped)",
                err=True,
            )
        self.split = self.protocol.draw(
            train.labels.numpy(),
            test.labels.numpy(),
            train.classes,
            self.cfg,
            self.seed,
        )
        s, val = self.split, self.split.validation
        test_order = np.concatenate([s.test_normal, s.test_abnormal])
        closed_order = np.concatenate([s.test_reference, s.test_normal])
        # which pool rows each image tensor holds (the identity of an image in caches)
        val_order = np.concatenate([val.normal, val.abnormal, val.labelled]) if val else _NONE
        self.pool_rows = {
            "train_images": ("train", s.train_indices()),
            "normal_images": ("train", s.normal_train),
            "val_images": ("train", val_order),
            "test_images": ("test", test_order),
            "closed_images": ("test", closed_order),
        }
        train_idx = torch.from_numpy(s.train_indices())
        self.train_images = train.images[train_idx].contiguous()
        self.train_labels = torch.from_numpy(
            training_labels(train.labels[train_idx].numpy(), s.train_classes)
        )
        self.train_is_normal = torch.from_numpy(np.isin(s.train_indices(), s.normal_train))
        self.normal_images = train.images[torch.from_numpy(s.normal_train)].contiguous()
        test_idx = torch.from_numpy(test_order)
        self.test_images = test.images[test_idx].contiguous()
        sizes = [len(s.test_normal), len(s.test_abnormal)]
        self.test_is_abnormal = torch.from_numpy(np.repeat([0, 1], sizes).astype(np.int64))
        closed_idx = torch.from_numpy(closed_order)
        self.closed_images = test.images[closed_idx].contiguous()
        self.closed_labels = torch.from_numpy(
            training_labels(test.labels[closed_idx].numpy(), s.train_classes)
        )
        self.val_images, self.val_is_abnormal, self.val_synthetic = validation_images(
            train.images, val, self.seed
        )
        val_pool_labels = train.labels[torch.from_numpy(val_order)].numpy()
        self.val_labels = torch.from_numpy(training_labels(val_pool_labels, s.train_classes))

    def pixel_stats(self) -> tuple[list[float], list[float]]:
        """Per-channel mean and std of the training images, computed when first asked for."""
        if self._pixel_stats is None:
            assert self.inputs == "images", "pixel_stats() must come before use_trunk_outputs()"
            self._pixel_stats = channel_stats(self.train_images)
        return self._pixel_stats

    def use_trunk_outputs(self, cache: Any, compute: Any) -> None:
        """Replace every image tensor by the frozen trunk's outputs for it (cached per image).

        Training then serves trunk outputs; with ``hflip`` each sample is drawn from the plain
        or the mirrored image's outputs with probability ½ (flips from cached views). Callers
        compute the trunk per batch instead when pad-and-crop is on (no cache can serve it).

        Args:
            cache: A :class:`adabench.trunk_cache.TrunkCache`.
            compute: The trunk of a batch of uint8 images.
        """
        assert self.split is not None, "call setup() first"
        if self.inputs == "trunk":
            return
        keys = {s: k or cache_key(s, self.source) for s, k in self.pool_keys.items()}
        if self.cfg.get("hflip", False):
            split, rows = self.pool_rows["train_images"]
            self.train_flipped = cache.outputs(
                keys[split], rows, self.train_images, compute, "hflip"
            )
        for name, (split, rows) in self.pool_rows.items():
            altered = self.val_synthetic if name == "val_images" else None  # no pool row
            outputs = cache.outputs_of(keys[split], rows, getattr(self, name), compute, altered)
            setattr(self, name, outputs)
        self.inputs = "trunk"

    @property
    def num_classes(self) -> int:
        """Number of training classes (reference classes + normal)."""
        assert self.split is not None, "call setup() first"
        return self.split.num_classes

    def summary(self) -> dict[str, Any]:
        """Sizes and class names of each part, for metrics.json."""
        assert self.split is not None, "call setup() first"
        s = self.split
        names = self.class_names
        return {
            "sizes": s.sizes(),
            "normal": [names[i] for i in s.normal_classes],
            "abnormal": [names[i] for i in s.abnormal_classes],
            "reference": [names[i] for i in s.train_classes if i not in s.normal_classes],
            "num_classes": s.num_classes,
            "image_shape": list(self.train_images.shape[1:]),
            "skipped_files": len(self.skipped),
            "skipped": list(self.skipped),
            "fingerprint": data_fingerprint(self.source),
            "reference_pool": getattr(self, "reference_name", None),
            "inputs": self.inputs,
            "augmentation": self.augmentation(),
            "trained_on": "normal images" if self.train_normal_only else "all training images",
        }

    def split_record(self) -> dict[str, Any]:
        """Which images are in each part (:func:`adabench.data.audit.split_record`)."""
        assert self.split is not None, "call setup() first"
        return split_record(self.split, self.class_names, self.pool_ids, self.protocol.describe())

    def augmentation(self) -> str:
        """The training augmentation in force, in words (for metrics.json)."""
        if self.inputs == "trunk":
            return "hflip (cached views)" if self.train_flipped is not None else "none"
        if self.views is not None:
            return "two views: " + ", ".join(f"{k}={v}" for k, v in self.views.items())
        pad, flip = int(self.cfg.get("pad_crop", 0) or 0), bool(self.cfg.get("hflip", False))
        parts = ([f"pad_crop={pad}"] if pad else []) + (["hflip"] if flip else [])
        return ", ".join(parts) or "none"

    # ------------------------------------------------------------------ loaders
    def train_dataloader(self) -> DataLoader:
        """Shuffled batches of (uint8 images, labels), one tensor gather per batch."""
        generator = torch.Generator().manual_seed(self.seed)
        tensors = [self.train_images, self.train_labels]
        if self.train_normal_only:
            tensors = [t[self.train_is_normal] for t in tensors]
        n = len(tensors[1])
        sampler = BatchSampler(
            RandomSampler(range(n), generator=generator),
            batch_size=self.batch_size,
            drop_last=n > self.batch_size,  # a trailing batch of 1 would break BatchNorm
        )
        if self.inputs == "trunk" and self.train_flipped is not None:
            tensors.append(self.train_flipped)
        return DataLoader(BatchTensors(*tensors), sampler=sampler, batch_size=None)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Augment training batches on the device they were moved to."""
        if self.trainer is not None and self.trainer.training and self.inputs == "trunk":
            if len(batch) == 3:  # choose the plain or the mirrored view per sample
                plain, labels, flipped = batch
                flip = torch.rand(len(labels)).to(plain.device) < 0.5
                shape = (-1,) + (1,) * (plain.dim() - 1)
                return torch.where(flip.view(shape), flipped, plain), labels
            return batch
        if self.trainer is not None and self.trainer.training and self.views is not None:
            images, labels = batch
            return two_views(images, self.views), labels
        if self.trainer is not None and self.trainer.training:
            images, labels = batch
            images = augment_batch(
                images,
                pad=int(self.cfg.get("pad_crop", 0) or 0),
                hflip=bool(self.cfg.get("hflip", False)),
            )
            return images, labels
        return batch

    def eval_batches(self, images: Tensor) -> Iterator[Tensor]:
        """Sequential batches of ``images`` for embedding."""
        for start in range(0, len(images), self.eval_batch_size):
            yield images[start : start + self.eval_batch_size]
