"""The metrics a run reports, one registry: name → function, direction, and what it measures.

Detection metrics are functions of ``(scores, is_abnormal)`` on float64 numpy arrays (abnormal =
positive, higher score = more anomalous), computed with scikit-learn's ranking metrics, which
use only the order of the scores: any real value works, of any magnitude or sign, ties
included. (torchmetrics' ``binary_*`` functions read scores outside [0, 1] as logits and apply a
sigmoid, which rounds large distances to the same 1.0 and so creates ties: adabench's AUROC
was wrong for L2 distances above ≈ 20 until it stopped using them.) A new metric is a function
and a :func:`register` line here; runs record it and the report's tables, plots and
``--metric`` choices pick it up from :data:`METRICS`. ``nn_accuracy`` (closed-set 1-NN
accuracy) and the classification protocol's accuracies and loss are argmax or nearest-neighbour
counts computed in :mod:`adabench.evaluation` and only described here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from adabench.errors import ConfigError

Detection = Callable[[np.ndarray, np.ndarray], float]


@dataclass(frozen=True)
class Metric:
    """One reported number.

    Attributes:
        name: Its key in metrics.json and results.csv.
        higher_is_better: Direction (FPR@95%TPR: lower is better).
        chance: Its value for a scorer that guesses (the plots draw it), or ``None``.
        detection: ``fn(scores, is_abnormal)`` on a float64 score array and a 0/1 label array,
            or ``None`` when it is computed elsewhere.
        bounds: The metric's range, for plot axes (``None``: unbounded).
    """

    name: str
    higher_is_better: bool
    chance: float | None
    detection: Detection | None = None
    bounds: tuple[float, float] | None = (0.0, 1.0)


METRICS: dict[str, Metric] = {}


def register(metric: Metric) -> Metric:
    """Add ``metric`` to :data:`METRICS` (a second one with the same name is an error)."""
    if metric.name in METRICS and METRICS[metric.name] != metric:
        raise ValueError(f"A metric named {metric.name!r} is already registered.")
    METRICS[metric.name] = metric
    return metric


def roc_curve(scores: np.ndarray, is_abnormal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False- and true-positive rates at every distinct score threshold (abnormal = positive).

    Every threshold is kept (no point is dropped), so rates read off the curve are exact.
    """
    from sklearn.metrics import roc_curve as sk_roc_curve

    fpr, tpr, _ = sk_roc_curve(
        np.asarray(is_abnormal), np.asarray(scores, np.float64), drop_intermediate=False
    )
    return fpr, tpr


def fpr_at_tpr(scores: np.ndarray, is_abnormal: np.ndarray, tpr_min: float = 0.95) -> float:
    """The lowest false-positive rate of a threshold that finds ``tpr_min`` of the anomalies."""
    fpr, tpr = roc_curve(scores, is_abnormal)
    return float(fpr[tpr >= tpr_min].min())


def auroc(scores: np.ndarray, is_abnormal: np.ndarray) -> float:
    """Area under the ROC curve: P(abnormal above normal) + ½ P(tie)."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(is_abnormal, scores))


def aupr(scores: np.ndarray, is_abnormal: np.ndarray) -> float:
    """Average precision (abnormal = positive): Σ (R_t − R_{t−1}) P_t over thresholds."""
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(is_abnormal, scores))


register(Metric("auroc", True, 0.5, auroc))
register(Metric("aupr", True, None, aupr))
register(Metric("fpr_at_95tpr", False, 0.95, fpr_at_tpr))
register(Metric("nn_accuracy", True, None))
# protocol=classification (adabench.evaluation.evaluate_classification)
register(Metric("train_accuracy", True, None))
register(Metric("test_accuracy", True, None))
register(Metric("test_loss", False, None, bounds=None))
register(Metric("knn_accuracy", True, None))


def ceiling(name: str) -> float | None:
    """The best value the metric ``name`` can take (AUROC 1, FPR@95 0), ``None`` when unbounded."""
    metric = METRICS.get(name)
    if metric is None or metric.bounds is None:
        return None
    return metric.bounds[1] if metric.higher_is_better else metric.bounds[0]


def higher_is_better(name: str) -> bool:
    """Direction of the metric ``name`` (unknown names count as higher-is-better)."""
    metric = METRICS.get(name)
    return metric.higher_is_better if metric else True


def detection_metrics(scores: np.ndarray, is_abnormal: np.ndarray) -> dict[str, float]:
    """Every registered detection metric of ``scores`` (abnormal = positive).

    Raises:
        ConfigError: the test set lacks normal or abnormal images, or a score is not finite.
    """
    preds = np.asarray(scores, dtype=np.float64).ravel()
    target = np.asarray(is_abnormal).astype(np.int64).ravel()
    if len(preds) != len(target):
        raise ConfigError(f"{len(preds)} scores for {len(target)} labels.")
    if target.min() == target.max():
        raise ConfigError("The test set needs both normal and abnormal images to compute AUROC.")
    if not np.isfinite(preds).all():
        bad = int((~np.isfinite(preds)).sum())
        raise ConfigError(f"{bad} anomaly scores are NaN or infinite; metrics need finite scores.")
    return {m.name: m.detection(preds, target) for m in METRICS.values() if m.detection}
