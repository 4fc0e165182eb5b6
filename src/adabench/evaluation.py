"""Lightning callback: embed normal-train and test images, score them, compute the metrics."""

from __future__ import annotations

import math
import time
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor

from adabench.data.datamodule import AnomalyDataModule
from adabench.module import AnomalyModule
from adabench.scoring import anomaly_scores, detection_metrics, nn_accuracy


def evaluate_embeddings(
    dm: AnomalyDataModule,
    train_emb: Tensor,
    test_emb: Tensor,
    closed_emb: Tensor,
    scorer: str = "knn",
    k: int = 1,
    metric: str = "cosine",
    **index_options: Any,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Metrics and per-image scores from the embeddings of a set-up DataModule's images.

    Args:
        dm: The DataModule (split, labels, which test images are abnormal).
        train_emb: Embeddings of ``dm.train_images`` (reference images, then the normal ones).
        test_emb: Embeddings of ``dm.test_images``.
        closed_emb: Embeddings of ``dm.closed_images`` (may be empty).
        scorer: ``knn`` or ``lof`` (:func:`adabench.scoring.anomaly_scores`).
        k: Number of neighbours.
        metric: ``cosine`` or ``l2``.
        **index_options: FAISS index choice (:func:`adabench.scoring.build_index`).

    Returns:
        The metrics (AUROC, AUPR, FPR@95%TPR, 1-NN accuracy) and the scores to save.
    """
    normal_emb = train_emb[len(dm.split.reference_train) :]
    scores = anomaly_scores(normal_emb, test_emb, scorer, k, metric, **index_options)
    is_abnormal = dm.test_is_abnormal.numpy()
    results: dict[str, Any] = detection_metrics(scores, is_abnormal)
    if len(closed_emb):
        results["nn_accuracy"] = nn_accuracy(
            train_emb, dm.train_labels.numpy(), closed_emb, dm.closed_labels.numpy(), metric
        )
    saved = {"score": scores.astype(np.float32), "is_abnormal": is_abnormal.astype(np.int8)}
    return results, saved


class AnomalyEvaluation(L.Callback):
    """After training (and every ``every_n_epochs`` if set), evaluate anomaly detection.

    The normal training images are embedded into the index (FAISS k-NN or LOF), each test image
    is scored by its distance to them, and AUROC, AUPR and FPR@95%TPR are computed with
    torchmetrics; 1-NN closed-set accuracy classifies held-out reference + normal test images
    against all training embeddings.

    Under DDP every rank first takes rank 0's weights and buffers, embeds a contiguous shard of
    each image set, and the shards are gathered in order, so every rank holds exactly the
    embeddings a single process would compute; rank 0 scores and broadcasts the metrics.

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

    # ------------------------------------------------------------------ embedding
    @staticmethod
    def _sync_from_rank_zero(module: AnomalyModule) -> None:
        """Give every rank rank 0's parameters and buffers (BatchNorm statistics differ)."""
        import torch.distributed as dist

        for t in [*module.parameters(), *module.buffers()]:
            if t.dtype != torch.bool:
                dist.broadcast(t.data, src=0)

    @staticmethod
    def embed_all(module: AnomalyModule, dm: AnomalyDataModule, images: Tensor) -> Tensor:
        """Embeddings of ``images``; under DDP each rank embeds a shard and all are gathered."""
        trainer = module._trainer
        world = trainer.world_size if trainer is not None else 1
        if world == 1:
            return module.embed(dm.eval_batches(images))
        per = math.ceil(len(images) / world)
        rank = trainer.global_rank
        shard = images[rank * per : (rank + 1) * per]
        dim = module.embedder.embedding_dim
        local = module.embed(dm.eval_batches(shard)) if len(shard) else torch.zeros(0, dim)
        padded = torch.zeros(per, dim, dtype=local.dtype)
        padded[: len(local)] = local
        gathered = module.all_gather(padded.to(module.device))  # [world, per, dim]
        return gathered.reshape(world * per, dim)[: len(images)].float().cpu()

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, module: AnomalyModule, dm: AnomalyDataModule) -> dict[str, Any]:
        """Compute every metric for the current weights (identical on every rank)."""
        trainer = module._trainer
        distributed = trainer is not None and trainer.world_size > 1
        if distributed:
            self._sync_from_rank_zero(module)
        t0 = time.perf_counter()
        train_emb = self.embed_all(module, dm, dm.train_images)
        test_emb = self.embed_all(module, dm, dm.test_images)
        closed_emb = self.embed_all(module, dm, dm.closed_images)
        t1 = time.perf_counter()
        results: dict[str, Any] | None = None
        if not distributed or trainer.global_rank == 0:
            results, self.scores = evaluate_embeddings(
                dm,
                train_emb,
                test_emb,
                closed_emb,
                self.scorer,
                self.k,
                self.metric,
                **self.index_options,
            )
            results.update(embed_seconds=t1 - t0, score_seconds=time.perf_counter() - t1)
        if distributed:
            results = trainer.strategy.broadcast(results, src=0)
        return results

    def _log(self, trainer: L.Trainer, metrics: dict[str, Any], prefix: str) -> None:
        if trainer.logger is not None and trainer.is_global_zero:
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
