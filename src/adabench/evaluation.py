"""Lightning callback: embed normal-train and test images, score them, compute the metrics."""

from __future__ import annotations

import time
from typing import Any

import lightning as L
import numpy as np

from adabench.data.datamodule import AnomalyDataModule
from adabench.module import AnomalyModule
from adabench.scoring import anomaly_scores, detection_metrics, nn_accuracy


class AnomalyEvaluation(L.Callback):
    """After training (and every ``every_n_epochs`` if set), evaluate anomaly detection.

    The normal training images are embedded into the index (FAISS k-NN or LOF), each test image
    is scored by its distance to them, and AUROC, AUPR and FPR@95%TPR are computed with
    torchmetrics; 1-NN closed-set accuracy classifies held-out reference + normal test images
    against all training embeddings.

    Args:
        scorer: ``knn`` or ``lof``.
        k: Number of neighbours.
        metric: ``cosine`` or ``l2`` (k-NN only; 1-NN accuracy uses it too).
        every_n_epochs: Also evaluate every N epochs during training (``None``: only at the end).
        index_options: FAISS index choice for k-NN (``index``, ``approx_min_size``, ``nprobe``,
            ``use_gpu``; see :func:`adabench.scoring.build_index`).
    """

    def __init__(
        self,
        scorer: str = "knn",
        k: int = 1,
        metric: str = "cosine",
        every_n_epochs: int | None = None,
        index_options: dict[str, Any] | None = None,
    ) -> None:
        self.scorer, self.k, self.metric = scorer, int(k), metric
        self.every_n_epochs = every_n_epochs
        self.index_options = dict(index_options or {})
        self.results: dict[str, Any] | None = None
        self.scores: dict[str, np.ndarray] | None = None
        self.history: list[dict[str, Any]] = []

    def evaluate(self, module: AnomalyModule, dm: AnomalyDataModule) -> dict[str, Any]:
        """Compute every metric for the current weights."""
        t0 = time.perf_counter()
        train_emb = module.embed(dm.eval_batches(dm.train_images))
        test_emb = module.embed(dm.eval_batches(dm.test_images))
        closed_emb = module.embed(dm.eval_batches(dm.closed_images))
        n_ref = len(dm.split.reference_train)
        normal_emb = train_emb[n_ref:]
        t1 = time.perf_counter()
        scores = anomaly_scores(
            normal_emb, test_emb, self.scorer, self.k, self.metric, **self.index_options
        )
        is_abnormal = dm.test_is_abnormal.numpy()
        metrics = detection_metrics(scores, is_abnormal)
        if len(closed_emb):
            metrics["nn_accuracy"] = nn_accuracy(
                train_emb,
                dm.train_labels.numpy(),
                closed_emb,
                dm.closed_labels.numpy(),
                self.metric,
            )
        t2 = time.perf_counter()
        self.scores = {
            "score": scores.astype(np.float32),
            "is_abnormal": is_abnormal.astype(np.int8),
        }
        return {**metrics, "embed_seconds": t1 - t0, "score_seconds": t2 - t1}

    def _log(self, trainer: L.Trainer, metrics: dict[str, Any], prefix: str) -> None:
        if trainer.logger is not None:
            trainer.logger.log_metrics(
                {f"{prefix}/{k}": v for k, v in metrics.items()}, step=trainer.global_step
            )

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: AnomalyModule) -> None:
        n = self.every_n_epochs
        last = trainer.current_epoch + 1 >= (trainer.max_epochs or 0)
        if n and (trainer.current_epoch + 1) % n == 0 and not last:
            metrics = self.evaluate(pl_module, trainer.datamodule)
            self.history.append({"epoch": trainer.current_epoch + 1, **metrics})
            self._log(trainer, metrics, "val")

    def on_train_end(self, trainer: L.Trainer, pl_module: AnomalyModule) -> None:
        self.results = self.evaluate(pl_module, trainer.datamodule)
        self._log(trainer, self.results, "test")
