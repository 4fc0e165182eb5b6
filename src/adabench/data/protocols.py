"""How each protocol splits a dataset (``protocol`` config group).

- ``anomaly``: reference + normal classes to train on, normal + abnormal test images
  (:func:`adabench.data.splits.make_split`).
- ``one_vs_rest``: the same with ``abnormal: rest`` (every class but the normal one) and no
  reference classes: set by ``conf/protocol/one_vs_rest.yaml``.
- ``classification``: every class is trained on and tested on; ``dataset.n_reference`` and
  ``dataset.n_test_reference`` cap the training and test images (``null``: all).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from adabench.data.splits import Split, SplitCounts, make_split, sample_classes
from adabench.errors import ConfigError, choices_hint

PROTOCOLS = ("anomaly", "one_vs_rest", "classification")
PRIMARY_METRIC = {"anomaly": "auroc", "one_vs_rest": "auroc", "classification": "test_accuracy"}


def check_protocol(name: str) -> str:
    """Raise :class:`ConfigError` unless ``name`` is a protocol."""
    if name not in PROTOCOLS:
        raise ConfigError(
            f"Unknown protocol {name!r}. Valid choices: {', '.join(PROTOCOLS)}."
            f"{choices_hint(name, PROTOCOLS)}"
        )
    return name


def draw_split(
    protocol: str,
    train_labels: np.ndarray,
    test_labels: np.ndarray,
    classes: Sequence[str],
    dataset: Mapping[str, Any],
    seed: int = 0,
) -> Split:
    """The split of ``protocol`` for the pools' labels; the same arguments give the same split."""
    if check_protocol(protocol) != "classification":
        counts = SplitCounts(**{k: dataset.get(k) for k in SplitCounts.__dataclass_fields__})
        return make_split(
            train_labels,
            test_labels,
            classes,
            normal=dataset.get("normal"),
            abnormal=dataset.get("abnormal"),
            reference=dataset.get("reference"),
            counts=counts,
            seed=seed,
        )
    every = tuple(range(len(classes)))
    rng = np.random.default_rng(seed)
    none = np.empty(0, dtype=np.int64)
    train_labels, test_labels = np.asarray(train_labels), np.asarray(test_labels)
    return Split(
        train_classes=every,
        normal_classes=(),
        abnormal_classes=(),
        reference_train=sample_classes(
            rng, train_labels, every, dataset.get("n_reference"), "n_reference"
        ),
        normal_train=none,
        test_normal=none,
        test_abnormal=none,
        test_reference=sample_classes(
            rng, test_labels, every, dataset.get("n_test_reference"), "n_test_reference"
        ),
    )
