"""Validation parts, drawn from the training pool only: what tuning and epoch choice look at.

A design (the ``validation`` config group, built into ``protocol.design``) takes a drawn
:class:`~adabench.data.splits.Split` and returns it with its :class:`ValidationParts`. Every
design draws with its own generator, after the split, so the training and test parts are those
of ``protocol.validation=false`` (except :class:`HeldOutReference`, which by definition takes
classes out of training). No design ever touches the test pool.

- :class:`HeldOutReference`: held-out normal images against whole reference classes that are
  not trained on (an unseen class stands in for the unknown anomaly).
- :class:`SyntheticAnomalies`: held-out normal images against cut-paste copies of other
  held-out normal images (self-supervised anomaly detection's validation; no labels needed).
- :class:`FewShotAbnormal`: held-out normal images against a few labelled training-pool images
  of the abnormal class(es): the inspection engineer's handful of known defects. Declared as
  ``few_shot`` in split.json and metrics.json; it sees the abnormal class, never a test image.
- :class:`HeldOutShare`: a share of the training images (every class), for
  ``protocol=classification``.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import torch

from adabench.data.parts import ValidationParts
from adabench.data.splits import Split
from adabench.errors import ConfigError


class TooFewImages(ConfigError):
    """The split leaves too few images for this design's validation parts."""


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng([seed, 0x7A11D])  # its own stream: the split's is untouched


class ValidationDesign:
    """Base of the designs: held-out normal images, and the anomalies each design adds.

    Args:
        n_normal: Held-out normal images. Taken from the normal class's training-pool images
            that the split left unused; when fewer are spare, the rest come out of
            ``normal_train``, at most ``max_share`` of it.
        n_abnormal: Validation anomalies.
        max_share: Largest share of ``normal_train`` that may be held out.
    """

    name = "design"

    def __init__(self, n_normal: int = 200, n_abnormal: int = 200, max_share: float = 0.2):
        if n_normal < 1 or n_abnormal < 1:
            raise ConfigError(
                f"protocol.design.n_normal and n_abnormal must be >= 1, got {n_normal} and "
                f"{n_abnormal} (protocol.validation=false turns validation off)."
            )
        if not 0.0 < max_share < 1.0:
            raise ConfigError(f"protocol.design.max_share must be in (0, 1), got {max_share}.")
        self.n_normal, self.n_abnormal, self.max_share = n_normal, n_abnormal, max_share

    def draw(
        self, split: Split, train_labels: np.ndarray, test_labels: np.ndarray, seed: int
    ) -> Split:
        """``split`` with its validation parts (and, where the design needs, fewer training)."""
        raise NotImplementedError

    def _hold_out_normal(
        self, split: Split, train_labels: np.ndarray, rng: np.random.Generator, n: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """(new ``normal_train``, held-out normal rows): spare rows first, then a share."""
        normal_rows = np.flatnonzero(np.isin(train_labels, split.normal_classes))
        spare = rng.permutation(np.setdiff1d(normal_rows, split.normal_train))
        taken = spare[:n]
        short = n - len(taken)
        train = split.normal_train
        if short > 0:
            short = min(short, int(self.max_share * len(train)))
            moved = rng.permutation(train)[:short]
            train = np.setdiff1d(train, moved)
            taken = np.concatenate([taken, moved])
        if len(taken) < 2:
            raise TooFewImages(
                f"only {len(train) + len(taken)} normal training images: too few to hold any "
                "out for validation (lower dataset.n_normal_train, or protocol.validation=false)"
            )
        return train, np.sort(taken).astype(np.int64)


class HeldOutReference(ValidationDesign):
    """Anomalies are images of ``n_classes`` reference classes, taken out of training."""

    name = "held_out_reference"

    def __init__(self, n_classes: int = 1, **kwargs) -> None:
        super().__init__(**kwargs)
        self.n_classes = int(n_classes)

    def draw(
        self, split: Split, train_labels: np.ndarray, test_labels: np.ndarray, seed: int
    ) -> Split:
        rng = _rng(seed)
        reference = [c for c in split.train_classes if c not in split.normal_classes]
        if len(reference) <= self.n_classes:
            raise ConfigError(
                f"validation=held_out_reference takes {self.n_classes} reference class(es) out "
                f"of training, but the split has {len(reference)}; use validation=synthetic or "
                "validation=few_shot."
            )
        held = tuple(sorted(int(c) for c in rng.choice(reference, self.n_classes, False)))
        rows = np.flatnonzero(np.isin(train_labels, held))
        abnormal = np.sort(rng.permutation(rows)[: self.n_abnormal]).astype(np.int64)
        normal_train, normal = self._hold_out_normal(split, train_labels, rng, self.n_normal)
        keep = ~np.isin(train_labels[split.reference_train], held)
        return dataclasses.replace(
            split,
            train_classes=tuple(c for c in split.train_classes if c not in held),
            reference_train=split.reference_train[keep],
            test_reference=split.test_reference[~np.isin(test_labels[split.test_reference], held)],
            normal_train=normal_train,
            validation=ValidationParts(self.name, normal, abnormal, held_out_classes=held),
        )


class SyntheticAnomalies(ValidationDesign):
    """Anomalies are cut-paste copies of held-out normal images (Li et al. 2021, CutPaste)."""

    name = "synthetic"

    def draw(
        self, split: Split, train_labels: np.ndarray, test_labels: np.ndarray, seed: int
    ) -> Split:
        rng = _rng(seed)
        n = self.n_normal + self.n_abnormal
        normal_train, held = self._hold_out_normal(split, train_labels, rng, n)
        held = rng.permutation(held)
        n_normal = max(1, round(len(held) * self.n_normal / n))
        normal, abnormal = np.sort(held[:n_normal]), np.sort(held[n_normal:])
        if len(abnormal) == 0:
            raise TooFewImages("too few held-out normal images for synthetic anomalies")
        parts = ValidationParts(self.name, normal, abnormal, synthetic="cutpaste")
        return dataclasses.replace(split, normal_train=normal_train, validation=parts)


class FewShotAbnormal(ValidationDesign):
    """Anomalies are ``n_abnormal`` training-pool images of the abnormal class(es) (declared)."""

    name = "few_shot"

    def __init__(self, n_abnormal: int = 20, **kwargs) -> None:
        super().__init__(n_abnormal=n_abnormal, **kwargs)

    def draw(
        self, split: Split, train_labels: np.ndarray, test_labels: np.ndarray, seed: int
    ) -> Split:
        rng = _rng(seed)
        rows = np.flatnonzero(np.isin(train_labels, split.abnormal_classes))
        if len(rows) == 0:  # an OK/NG tree without val/ defects: no known anomaly to look at
            warnings.warn(
                "validation=few_shot found no abnormal-class image in the training pool (an "
                "inspection tree's val/ folder holds them); the validation anomalies are "
                "synthetic (cut-paste) instead, as validation=synthetic draws them.",
                stacklevel=2,
            )
            fallback = SyntheticAnomalies(self.n_normal, self.n_normal, self.max_share)
            return fallback.draw(split, train_labels, test_labels, seed)
        abnormal = np.sort(rng.permutation(rows)[: self.n_abnormal]).astype(np.int64)
        normal_train, normal = self._hold_out_normal(split, train_labels, rng, self.n_normal)
        parts = ValidationParts(self.name, normal, abnormal, few_shot=True)
        return dataclasses.replace(split, normal_train=normal_train, validation=parts)


class HeldOutShare(ValidationDesign):
    """``protocol=classification``: ``share`` of the training images of every class."""

    name = "held_out_share"

    def __init__(self, share: float = 0.1, **kwargs) -> None:
        super().__init__(**kwargs)
        if not 0.0 < share < 1.0:
            raise ConfigError(f"protocol.design.share must be in (0, 1), got {share}.")
        self.share = share

    def draw(
        self, split: Split, train_labels: np.ndarray, test_labels: np.ndarray, seed: int
    ) -> Split:
        rng = _rng(seed)
        rows = split.reference_train
        held = np.sort(rng.permutation(rows)[: max(1, round(self.share * len(rows)))])
        none = np.empty(0, np.int64)
        parts = ValidationParts(self.name, none, none, labelled=held.astype(np.int64))
        return dataclasses.replace(
            split, reference_train=np.setdiff1d(rows, held), validation=parts
        )


def validation_images(
    pool: torch.Tensor, parts: ValidationParts | None, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The validation images (normal, abnormal, labelled rows in that order) of a train pool.

    Returns the images, whether each is a validation anomaly, and whether it is an altered
    (synthetic) copy rather than a pool image.
    """
    if parts is None:
        empty = pool[:0]
        return empty, torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.bool)
    rows = np.concatenate([parts.normal, parts.abnormal, parts.labelled])
    images = pool[torch.from_numpy(rows)].contiguous()
    n, a = len(parts.normal), len(parts.abnormal)
    is_abnormal = torch.zeros(len(rows), dtype=torch.long)
    is_abnormal[n : n + a] = 1
    altered = torch.zeros(len(rows), dtype=torch.bool)
    if parts.synthetic == "cutpaste":
        altered[n : n + a] = True
        images[altered] = cutpaste(images[altered], seed)
    return images, is_abnormal, altered


def cutpaste(images: torch.Tensor, seed: int) -> torch.Tensor:
    """Cut-paste anomalies: a random patch of each image pasted elsewhere on it, maybe mirrored.

    Args:
        images: ``[N, C, H, W]`` uint8 images.
        seed: Fixes every patch (the same seed gives the same anomalies).
    """
    gen = np.random.default_rng([seed, 0xC07])
    out = images.clone()
    _, _, h, w = images.shape
    for i in range(len(images)):
        ph = int(gen.integers(max(1, h // 8), max(2, h // 3) + 1))
        pw = int(gen.integers(max(1, w // 8), max(2, w // 3) + 1))
        y0, x0 = int(gen.integers(0, h - ph + 1)), int(gen.integers(0, w - pw + 1))
        y1, x1 = int(gen.integers(0, h - ph + 1)), int(gen.integers(0, w - pw + 1))
        patch = images[i, :, y0 : y0 + ph, x0 : x0 + pw]
        if gen.random() < 0.5:
            patch = patch.flip(-1)
        out[i, :, y1 : y1 + ph, x1 : x1 + pw] = patch
    return out
