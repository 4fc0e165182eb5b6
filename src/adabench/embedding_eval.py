"""What embeddings measure, as a value (:class:`Evaluation`): pure numpy/torch, no Lightning.

:func:`evaluate_embeddings` scores test images against the normal training embeddings and
computes the detection metrics; :func:`classify` and :func:`evaluate_classification` give the
accuracies of ``protocol=classification``. The protocol objects (:mod:`adabench.data.protocols`)
call them; :mod:`adabench.evaluation` embeds a trained model's images first, and the
no-training baselines call them directly. ``dm`` is a set-up
:class:`~adabench.data.datamodule.AnomalyDataModule` (its labels and parts).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from adabench.metrics import detection_metrics
from adabench.scoring import Scorer, nn_accuracy


@dataclass
class Evaluation:
    """What one evaluation produced.

    Attributes:
        metrics: AUROC, AUPR, FPR@95%TPR (every detection metric registered) and the closed-set
            1-NN accuracy.
        scores: Per test image: ``score`` (float64, the values the metrics read) and
            ``is_abnormal`` (int8), for scores.npz.
        embed_s: Seconds spent embedding.
        score_s: Seconds spent fitting the scorer, scoring and computing the metrics.
        embeddings: What was scored, with labels (embeddings.npz when ``save_embeddings``).
        validation: The metrics of the validation parts, under the test metrics' names.
    """

    metrics: dict[str, float]
    scores: dict[str, np.ndarray] = field(default_factory=dict)
    embed_s: float = 0.0
    score_s: float = 0.0
    embeddings: dict[str, np.ndarray] = field(default_factory=dict)
    validation: dict[str, float] = field(default_factory=dict)


def evaluate_embeddings(dm: Any, emb: dict[str, Tensor], scorer: Scorer) -> Evaluation:
    """Metrics and per-image scores from the embeddings of a set-up DataModule's images.

    Args:
        dm: The DataModule (labels, which training images are normal, which test images are
            abnormal).
        emb: Embeddings of ``dm.train_images``, ``dm.test_images`` and ``dm.closed_images``
            under the keys ``train``, ``test`` and ``closed`` (``closed`` may be empty).
        scorer: A scorer; fitted here on the normal training embeddings unless it already is
            (validation and test share one fitted scorer).
    """
    t0 = time.perf_counter()
    if not getattr(scorer, "fitted_on", 0):
        scorer.fit(emb["train"][dm.train_is_normal])
    scores = scorer.score(emb["test"])
    is_abnormal = dm.test_is_abnormal.numpy()
    metrics: dict[str, float] = detection_metrics(scores, is_abnormal)
    if len(emb["closed"]) and dm.num_classes > 1:  # one class alone: nothing to tell apart
        metrics["nn_accuracy"] = nn_accuracy(
            emb["train"],
            dm.train_labels.numpy(),
            emb["closed"],
            dm.closed_labels.numpy(),
            scorer.distance,
        )
    saved = {"score": np.asarray(scores, np.float64), "is_abnormal": is_abnormal.astype(np.int8)}
    embeddings = {
        "train": emb["train"].numpy(),
        "train_labels": dm.train_labels.numpy(),
        "train_is_normal": dm.train_is_normal.numpy(),
        "test": emb["test"].numpy(),
        "test_is_abnormal": is_abnormal,
        "closed": emb["closed"].numpy(),
        "closed_labels": dm.closed_labels.numpy(),
    }
    return Evaluation(metrics, saved, score_s=time.perf_counter() - t0, embeddings=embeddings)


def classify(
    train: Tensor, train_labels: Tensor, query: Tensor, labels: Tensor, head: Any, scorer: Any
) -> tuple[dict[str, float], np.ndarray | None]:
    """Accuracies of classifying ``query``: by the head (when it has logits) and by 1-NN.

    Returns the metrics (``test_accuracy``: argmax of the head's margin-free logits,
    ``test_loss``: the training loss, margins included, ``knn_accuracy``: the nearest
    training embedding's class) and the head's predictions (``None`` without a head).
    """
    metrics = {
        "knn_accuracy": nn_accuracy(
            train, train_labels.numpy(), query, labels.numpy(), scorer.distance
        )
    }
    if head is None:
        return metrics, None
    device = next(iter(head.parameters()), torch.zeros(0)).device
    x, y = query.to(device), labels.to(device)
    was = head.training
    head.eval()  # no scale updates (AdaCos) or annealing steps (SphereFace) on held-out data
    try:
        with torch.no_grad():
            logits = head.logits(x)
            metrics["test_loss"] = float(head(x, y))
    finally:
        head.train(was)
    if logits is None:
        return metrics, None
    predicted = logits.argmax(1).cpu()
    metrics["test_accuracy"] = float((predicted == labels).float().mean())
    return metrics, predicted.numpy().astype(np.int64)


def evaluate_classification(dm: Any, emb: dict[str, Tensor], head: Any, scorer: Any) -> Evaluation:
    """``protocol=classification``: every test image classified (:func:`classify`).

    Without a head (no-training rows), only ``knn_accuracy``.
    """
    t0 = time.perf_counter()
    labels = dm.closed_labels
    metrics, predicted = classify(
        emb["train"], dm.train_labels, emb["closed"], labels, head, scorer
    )
    saved = {"label": labels.numpy().astype(np.int64)}
    if predicted is not None:
        saved["predicted"] = predicted
    embeddings = {
        "train": emb["train"].numpy(),
        "train_labels": dm.train_labels.numpy(),
        "test": emb["closed"].numpy(),
        "test_labels": labels.numpy(),
    }
    return Evaluation(metrics, saved, score_s=time.perf_counter() - t0, embeddings=embeddings)
