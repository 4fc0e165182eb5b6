"""The metrics a run reports, one registry: name → function, direction, and what it measures.

Detection metrics are functions of ``(scores, is_abnormal)`` (abnormal = positive, higher score
= more anomalous), computed with torchmetrics in float64. A new one is a function and a
:func:`register` line here; runs record it and the report's tables, plots and ``--metric``
choices pick it up from :data:`METRICS`. ``nn_accuracy`` (closed-set 1-NN accuracy) and the
classification protocol's accuracies and loss are computed in :mod:`adabench.evaluation` and only
described here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torchmetrics.functional.classification import (
    binary_auroc,
    binary_average_precision,
    binary_roc,
)

from adabench.errors import ConfigError


@dataclass(frozen=True)
class Metric:
    """One reported number.

    Attributes:
        name: Its key in metrics.json and results.csv.
        higher_is_better: Direction (FPR@95%TPR: lower is better).
        chance: Its value for a scorer that guesses (the plots draw it), or ``None``.
        detection: ``fn(preds, target)`` on float64 scores and long labels, or ``None`` when it
            is computed elsewhere.
    """

    name: str
    higher_is_better: bool
    chance: float | None
    detection: Callable[[torch.Tensor, torch.Tensor], float] | None = None


METRICS: dict[str, Metric] = {}


def register(metric: Metric) -> Metric:
    """Add ``metric`` to :data:`METRICS` (a second one with the same name is an error)."""
    if metric.name in METRICS and METRICS[metric.name] != metric:
        raise ValueError(f"A metric named {metric.name!r} is already registered.")
    METRICS[metric.name] = metric
    return metric


def _fpr_at_95tpr(preds: torch.Tensor, target: torch.Tensor) -> float:
    fpr, tpr, _ = binary_roc(preds, target)
    return float(fpr[tpr >= 0.95].min())


register(Metric("auroc", True, 0.5, lambda p, t: float(binary_auroc(p, t))))
register(Metric("aupr", True, None, lambda p, t: float(binary_average_precision(p, t))))
register(Metric("fpr_at_95tpr", False, 0.95, _fpr_at_95tpr))
register(Metric("nn_accuracy", True, None))
# protocol=classification (adabench.evaluation.evaluate_classification)
register(Metric("train_accuracy", True, None))
register(Metric("test_accuracy", True, None))
register(Metric("test_loss", False, None))
register(Metric("knn_accuracy", True, None))


def higher_is_better(name: str) -> bool:
    """Direction of the metric ``name`` (unknown names count as higher-is-better)."""
    metric = METRICS.get(name)
    return metric.higher_is_better if metric else True


def detection_metrics(scores: np.ndarray, is_abnormal: np.ndarray) -> dict[str, float]:
    """Every registered detection metric of ``scores`` (abnormal = positive).

    Raises:
        ConfigError: the test set lacks normal or abnormal images.
    """
    preds = torch.as_tensor(np.asarray(scores, dtype=np.float64))
    target = torch.as_tensor(np.asarray(is_abnormal)).long()
    if target.min() == target.max():
        raise ConfigError("The test set needs both normal and abnormal images to compute AUROC.")
    return {m.name: m.detection(preds, target) for m in METRICS.values() if m.detection}
