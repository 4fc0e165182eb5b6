"""Protocols as objects (the ``protocol`` config group, built by ``_target_``).

A protocol owns what a seed draws from the pools (training, validation and test parts, a
frozen :class:`~adabench.data.splits.Split`), how embeddings become an
:class:`~adabench.evaluation.Evaluation` (test) and validation metrics, its primary metric and
its validation metric, and the name of a task. Nothing outside this module compares a
protocol's name (the report reads finished records).

- :class:`Anomaly`: reference + normal classes to train on, normal + abnormal test images.
- :class:`OneVsRest`: one normal class, every other class abnormal, nothing else trained on.
- :class:`Classification`: every class trained on and tested on.

A new protocol is a subclass here (or anywhere importable) and a YAML file in
``conf/protocol/``; docs/architecture.md shows how.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from adabench.data.splits import (
    Split,
    SplitCounts,
    is_rest,
    make_split,
    resolve_classes,
    sample_classes,
)
from adabench.data.validation import TooFewImages, ValidationDesign
from adabench.embedding_eval import (
    Evaluation,
    classify,
    evaluate_classification,
    evaluate_embeddings,
)
from adabench.errors import ConfigError
from adabench.metrics import detection_metrics


def _classes(value: Any) -> str:
    if value is None:
        return "rest"
    if isinstance(value, str | int):
        return str(value)
    return "+".join(str(v) for v in value) or "rest"


class Protocol:
    """Base of the protocols.

    Args:
        validation: Draw validation parts (``False``: the splits of earlier versions).
        design: How the validation parts are drawn (the ``validation`` config group).
    """

    name = "protocol"  # its YAML file's name, recorded in metrics.json
    primary_metric = "auroc"  # the headline test metric, and the validation metric's name
    scores_anomalies = True  # test images get anomaly scores (scores.npz, ROC plots)

    def __init__(self, validation: bool = True, design: ValidationDesign | None = None) -> None:
        self.validation, self.design = bool(validation), design
        if self.validation and design is None:
            raise ConfigError(
                f"protocol={self.name} has validation on but no design; choose one "
                "(validation=held_out_reference, synthetic or few_shot) or set "
                "protocol.validation=false."
            )

    # ------------------------------------------------------------------ the split
    def check_classes(self, dataset: Mapping[str, Any], names: Sequence[str]) -> None:
        """Raise :class:`ConfigError` for a configured class the dataset lacks (before decoding)."""
        for role in ("normal", "abnormal", "reference"):
            if not is_rest(dataset.get(role), names):
                resolve_classes(dataset.get(role), names, role)

    def draw(
        self,
        train_labels: np.ndarray,
        test_labels: np.ndarray,
        classes: Sequence[str],
        dataset: Mapping[str, Any],
        seed: int = 0,
    ) -> Split:
        """The split for a seed, with its validation parts; the same arguments, the same split."""
        train, test = np.asarray(train_labels), np.asarray(test_labels)
        split = self._draw(train, test, classes, dataset, seed)
        if self.validation and self.design is not None:
            try:
                split = self.design.draw(split, train, test, seed)
            except TooFewImages as err:  # a tiny dataset still runs, without validation
                warnings.warn(f"No validation parts: {err}.", stacklevel=2)
        return split

    def _draw(
        self,
        train_labels: np.ndarray,
        test_labels: np.ndarray,
        classes: Sequence[str],
        dataset: Mapping[str, Any],
        seed: int,
    ) -> Split:
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

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, dm: Any, emb: Mapping[str, Any], head: Any, scorer: Any) -> Evaluation:
        """The test evaluation of the embeddings (computed once, at the end of a run)."""
        return evaluate_embeddings(dm, emb, scorer)

    def validate(self, dm: Any, emb: Mapping[str, Any], head: Any, scorer: Any) -> dict[str, float]:
        """Metrics of the validation parts (named as the test metrics), ``{}`` when off."""
        if dm.split.validation is None or len(emb.get("val", ())) == 0:
            return {}
        if not getattr(scorer, "fitted_on", 0):  # fitted once: the test evaluation reuses it
            scorer.fit(emb["train"][dm.train_is_normal])
        return detection_metrics(scorer.score(emb["val"]), dm.val_is_abnormal.numpy())

    def training_metrics(self, train_accuracy: float | None) -> dict[str, float]:
        """Metrics that come from training itself (none for anomaly detection)."""
        return {}

    # ------------------------------------------------------------------ records
    def task(self, dataset: str, normal: Any, abnormal: Any, reference: Any = None) -> str:
        """The task's name, e.g. ``cifar10_jpg: deer vs horse``."""
        label = f"{dataset}: {_classes(normal)} vs {_classes(abnormal)}"
        return label + (f" (ref {_classes(reference)})" if reference is not None else "")

    def describe(self) -> dict[str, Any]:
        """What metrics.json records of the protocol and its validation parts."""
        design = self.design.name if self.validation and self.design is not None else None
        return {
            "name": self.name,
            "primary_metric": self.primary_metric,
            "validation": design,
            "few_shot": design == "few_shot",
        }


class Anomaly(Protocol):
    """Train on reference + normal classes; score normal vs abnormal test images.

    The seed protocol (:func:`adabench.data.splits.make_split`).
    """

    name = "anomaly"


class OneVsRest(Anomaly):
    """One normal class, every other class abnormal (``abnormal: rest``, no reference).

    Validation anomalies: with ``validation=synthetic`` (its default), cut-paste copies of
    held-out normal images, which costs no leakage. ``validation=few_shot`` would take
    training-pool images of the other classes, the very classes the test calls abnormal: a
    declared leak of the test's anomaly classes (never of its images).
    """

    name = "one_vs_rest"

    def task(self, dataset: str, normal: Any, abnormal: Any, reference: Any = None) -> str:
        return f"{dataset} one-vs-rest: {_classes(normal)}"


class Classification(Protocol):
    """Every class is trained on and tested on.

    ``dataset.n_reference`` and ``dataset.n_test_reference`` cap the training and test images
    (``null``: all).

    Validation: a held-out share of the training images (``validation=held_out_share``).
    """

    name = "classification"
    primary_metric = "test_accuracy"
    scores_anomalies = False

    def check_classes(self, dataset: Mapping[str, Any], names: Sequence[str]) -> None:
        return None  # normal / abnormal are not used

    def _draw(
        self,
        train_labels: np.ndarray,
        test_labels: np.ndarray,
        classes: Sequence[str],
        dataset: Mapping[str, Any],
        seed: int,
    ) -> Split:
        every = tuple(range(len(classes)))
        rng = np.random.default_rng(seed)
        none = np.empty(0, dtype=np.int64)
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

    def evaluate(self, dm: Any, emb: Mapping[str, Any], head: Any, scorer: Any) -> Evaluation:
        return evaluate_classification(dm, emb, head, scorer)

    def validate(self, dm: Any, emb: Mapping[str, Any], head: Any, scorer: Any) -> dict[str, float]:
        if dm.split.validation is None or len(emb.get("val", ())) == 0:
            return {}
        return classify(emb["train"], dm.train_labels, emb["val"], dm.val_labels, head, scorer)[0]

    def training_metrics(self, train_accuracy: float | None) -> dict[str, float]:
        return {} if train_accuracy is None else {"train_accuracy": train_accuracy}

    def task(self, dataset: str, normal: Any, abnormal: Any, reference: Any = None) -> str:
        return f"{dataset} classification"
