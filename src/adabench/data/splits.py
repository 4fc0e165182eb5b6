"""Reproducible, validated splits into reference / normal-train / test sets (pure numpy).

The protocol: the model is trained to classify the *reference* classes plus the *normal* class;
the *abnormal* class is never seen in training. Training images come from the dataset's train
pool, test images from its test pool.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from adabench.data.parts import ValidationParts
from adabench.errors import ConfigError, choices_hint

ClassSpec = int | str | Sequence[int | str] | None


@dataclass(frozen=True)
class SplitCounts:
    """How many images each part gets; ``None`` takes everything available."""

    n_reference: int | None = None
    n_normal_train: int | None = None
    n_test_normal: int | None = None
    n_test_abnormal: int | None = None
    n_test_reference: int | None = None


@dataclass(frozen=True)
class Split:
    """Indices into the train and test pools, and the training label of each class.

    Attributes:
        train_classes: Pool class indices trained on; training label ``i`` is ``train_classes[i]``.
        normal_classes: Pool class indices of the normal class(es).
        abnormal_classes: Pool class indices of the abnormal class(es).
        reference_train: Train-pool indices of reference images.
        normal_train: Train-pool indices of normal images (also the k-NN index).
        test_normal: Test-pool indices of normal images.
        test_abnormal: Test-pool indices of abnormal images.
        test_reference: Test-pool indices of reference images (closed-set accuracy).
        validation: The validation parts (train-pool rows), or ``None`` when off.
    """

    train_classes: tuple[int, ...]
    normal_classes: tuple[int, ...]
    abnormal_classes: tuple[int, ...]
    reference_train: np.ndarray
    normal_train: np.ndarray
    test_normal: np.ndarray
    test_abnormal: np.ndarray
    test_reference: np.ndarray
    validation: ValidationParts | None = None

    @property
    def num_classes(self) -> int:
        """Number of training classes."""
        return len(self.train_classes)

    def train_indices(self) -> np.ndarray:
        """Train-pool indices of every training image (reference, then normal)."""
        return np.concatenate([self.reference_train, self.normal_train])

    def sizes(self) -> dict[str, int]:
        """Number of images in each part."""
        return {
            "reference_train": len(self.reference_train),
            "normal_train": len(self.normal_train),
            "test_normal": len(self.test_normal),
            "test_abnormal": len(self.test_abnormal),
            "test_reference": len(self.test_reference),
            **(self.validation.sizes() if self.validation else {}),
        }


def resolve_classes(spec: ClassSpec, classes: Sequence[str], role: str) -> tuple[int, ...]:
    """Turn class names or indices into sorted pool class indices.

    Args:
        spec: A class name, an index, or a list of them (``None`` gives ``()``).
        classes: The dataset's class names, by index.
        role: What the classes are for (``normal``, ``abnormal``, ``reference``), for messages.

    Raises:
        ConfigError: a name or index the dataset lacks; the message lists the valid ones.
    """
    if spec is None:
        return ()
    items = [spec] if isinstance(spec, int | str) else list(spec)
    out: set[int] = set()
    for item in items:
        if isinstance(item, bool):
            raise ConfigError(f"dataset.{role}: {item!r} is not a class name or index.")
        if isinstance(item, int) or (
            isinstance(item, str) and item.isdigit() and item not in classes
        ):
            idx = int(item)
            if not 0 <= idx < len(classes):
                raise ConfigError(
                    f"dataset.{role}: class index {idx} is out of range; the dataset has "
                    f"{len(classes)} classes (0..{len(classes) - 1}): {_listing(classes)}."
                )
            out.add(idx)
        elif item in classes:
            out.add(list(classes).index(item))
        else:
            raise ConfigError(
                f"dataset.{role}: unknown class {item!r}. Valid classes: {_listing(classes)}."
                f"{choices_hint(item, classes)}"
            )
    if not out and role != "reference":
        raise ConfigError(f"dataset.{role} is empty; name at least one class.")
    return tuple(sorted(out))


def _listing(classes: Sequence[str]) -> str:
    return ", ".join(f"{i}={name!r}" for i, name in enumerate(classes))


def sample_classes(
    rng: np.random.Generator, labels: np.ndarray, class_ids: Sequence[int], n: int | None, what: str
) -> np.ndarray:
    """Sample ``n`` indices whose label is in ``class_ids``, spread evenly over the classes."""
    per_class = [np.flatnonzero(labels == c) for c in class_ids]
    available = sum(len(p) for p in per_class)
    if n is None:
        picked = [rng.permutation(p) for p in per_class]
    else:
        if n < 0:
            raise ConfigError(f"dataset.{what} must be >= 0 or null (all), got {n}.")
        if n > available:
            raise ConfigError(
                f"dataset.{what}={n} is more than the {available} images available "
                f"(use at most {available}, or null for all)."
            )
        quota = _even_quota(n, [len(p) for p in per_class])
        picked = [rng.permutation(p)[:q] for p, q in zip(per_class, quota, strict=True)]
    out = np.concatenate(picked) if picked else np.empty(0, dtype=np.int64)
    return np.sort(out).astype(np.int64)


def _even_quota(n: int, sizes: list[int]) -> list[int]:
    """Split ``n`` over classes as evenly as their sizes allow (water-filling)."""
    quota = [0] * len(sizes)
    remaining = n
    open_ = [i for i, s in enumerate(sizes) if s > 0]
    while remaining > 0 and open_:
        share, extra = divmod(remaining, len(open_))
        for rank, i in enumerate(list(open_)):
            give = min(sizes[i] - quota[i], share + (1 if rank < extra else 0))
            quota[i] += give
            remaining -= give
        open_ = [i for i in open_ if quota[i] < sizes[i]]
    return quota


REST = "rest"


def is_rest(spec: ClassSpec, classes: Sequence[str]) -> bool:
    """Whether ``spec`` is the keyword ``rest`` (and not the name of a class)."""
    return isinstance(spec, str) and spec == REST and REST not in classes


def make_split(
    train_labels: np.ndarray,
    test_labels: np.ndarray,
    classes: Sequence[str],
    normal: ClassSpec,
    abnormal: ClassSpec,
    reference: ClassSpec = None,
    counts: SplitCounts | None = None,
    seed: int = 0,
) -> Split:
    """Draw the reference / normal / abnormal split; the same arguments give the same split.

    Args:
        train_labels: Class index of each train-pool image.
        test_labels: Class index of each test-pool image.
        classes: Class names, by index.
        normal: The normal class(es).
        abnormal: The abnormal class(es), never trained on; ``"rest"``: every class that is not
            normal (one-vs-rest).
        reference: Reference classes; ``None`` takes every class that is neither normal nor
            abnormal.
        counts: How many images each part gets.
        seed: Seed of the sampling.

    Raises:
        ConfigError: unknown or overlapping classes, or counts beyond what exists.
    """
    counts = counts or SplitCounts()
    normal_ids = resolve_classes(normal, classes, "normal")
    if is_rest(abnormal, classes):  # one-vs-rest: every other class is abnormal
        abnormal_ids = tuple(i for i in range(len(classes)) if i not in normal_ids)
    else:
        abnormal_ids = resolve_classes(abnormal, classes, "abnormal")
    if not normal_ids or not abnormal_ids:
        raise ConfigError("dataset.normal and dataset.abnormal must each name at least one class.")
    both = set(normal_ids) & set(abnormal_ids)
    if both:
        shared = [classes[i] for i in sorted(both)]
        raise ConfigError(
            f"dataset.normal and dataset.abnormal share class(es) {shared}; a class cannot be both."
        )
    if reference is None:
        reference_ids = tuple(
            i for i in range(len(classes)) if i not in normal_ids and i not in abnormal_ids
        )
    else:
        reference_ids = resolve_classes(reference, classes, "reference")
        clash = set(reference_ids) & (set(normal_ids) | set(abnormal_ids))
        if clash:
            raise ConfigError(
                f"dataset.reference overlaps normal/abnormal in class(es) "
                f"{[classes[i] for i in sorted(clash)]}; reference classes must be other classes."
            )
    train_labels = np.asarray(train_labels)
    test_labels = np.asarray(test_labels)
    rng = np.random.default_rng(seed)
    return Split(
        train_classes=reference_ids + normal_ids,
        normal_classes=normal_ids,
        abnormal_classes=abnormal_ids,
        reference_train=sample_classes(
            rng, train_labels, reference_ids, counts.n_reference, "n_reference"
        ),
        normal_train=sample_classes(
            rng, train_labels, normal_ids, counts.n_normal_train, "n_normal_train"
        ),
        test_normal=sample_classes(
            rng, test_labels, normal_ids, counts.n_test_normal, "n_test_normal"
        ),
        test_abnormal=sample_classes(
            rng, test_labels, abnormal_ids, counts.n_test_abnormal, "n_test_abnormal"
        ),
        test_reference=sample_classes(
            rng, test_labels, reference_ids, counts.n_test_reference, "n_test_reference"
        ),
    )


def training_labels(pool_labels: np.ndarray, train_classes: Sequence[int]) -> np.ndarray:
    """Map pool class indices to training labels ``0..C-1`` (``-1`` for classes not trained on)."""
    lut = np.full(int(max(pool_labels.max(initial=0), max(train_classes, default=0))) + 1, -1)
    lut[list(train_classes)] = np.arange(len(train_classes))
    return lut[pool_labels]
