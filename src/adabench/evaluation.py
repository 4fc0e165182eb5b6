"""Evaluation: embeddings → scorer → metrics, as a value (:class:`Evaluation`).

:func:`evaluate_embeddings` is the pure part (no Lightning: the no-training baselines call it
directly); :class:`AnomalyEvaluation` is the Lightning callback that embeds a trained model's
images (sharded under DDP) and calls it, at the end of training and optionally every N epochs.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor

from adabench.data.datamodule import AnomalyDataModule
from adabench.lightning_module import AnomalyModule
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
    """

    metrics: dict[str, float]
    scores: dict[str, np.ndarray] = field(default_factory=dict)
    embed_s: float = 0.0
    score_s: float = 0.0
    embeddings: dict[str, np.ndarray] = field(default_factory=dict)


def evaluate_embeddings(
    dm: AnomalyDataModule, emb: dict[str, Tensor], scorer: Scorer
) -> Evaluation:
    """Metrics and per-image scores from the embeddings of a set-up DataModule's images.

    Args:
        dm: The DataModule (labels, which training images are normal, which test images are
            abnormal).
        emb: Embeddings of ``dm.train_images``, ``dm.test_images`` and ``dm.closed_images``
            under the keys ``train``, ``test`` and ``closed`` (``closed`` may be empty).
        scorer: An unfitted scorer; it is fitted on the normal training embeddings.
    """
    t0 = time.perf_counter()
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


def evaluate_classification(
    dm: AnomalyDataModule, emb: dict[str, Tensor], head: Any, distance: str = "cosine"
) -> Evaluation:
    """``protocol=classification``: every test image classified, by the head and by 1-NN.

    Metrics: ``test_accuracy`` (argmax of the head's margin-free logits), ``test_loss`` (the
    training loss on the test images: margins included) and ``knn_accuracy`` (the nearest
    training embedding's class). Without a head (no-training rows), only ``knn_accuracy``.
    """
    t0 = time.perf_counter()
    labels = dm.closed_labels
    knn = nn_accuracy(
        emb["train"], dm.train_labels.numpy(), emb["closed"], labels.numpy(), distance
    )
    metrics: dict[str, float] = {"knn_accuracy": knn}
    saved = {"label": labels.numpy().astype(np.int64)}
    if head is not None:
        device = next(iter(head.parameters()), torch.zeros(0)).device
        x, y = emb["closed"].to(device), labels.to(device)
        was = head.training
        head.eval()  # no scale updates (AdaCos) or annealing steps (SphereFace) on test data
        try:
            with torch.no_grad():
                logits = head.logits(x)
                metrics["test_loss"] = float(head(x, y))
        finally:
            head.train(was)
        if logits is not None:
            predicted = logits.argmax(1).cpu()
            metrics["test_accuracy"] = float((predicted == labels).float().mean())
            saved["predicted"] = predicted.numpy().astype(np.int64)
    embeddings = {
        "train": emb["train"].numpy(),
        "train_labels": dm.train_labels.numpy(),
        "test": emb["closed"].numpy(),
        "test_labels": labels.numpy(),
    }
    return Evaluation(metrics, saved, score_s=time.perf_counter() - t0, embeddings=embeddings)


EVAL_PARTS = {"train": "train_images", "test": "test_images", "closed": "closed_images"}


class AnomalyEvaluation(L.Callback):
    """After training (and every ``every_n_epochs`` if set), evaluate anomaly detection.

    The normal training images are embedded into the scorer (FAISS k-NN or LOF), each test image
    is scored against them, and the metrics of :mod:`adabench.metrics` are computed; 1-NN
    closed-set accuracy classifies held-out reference + normal test images against all training
    embeddings. The final :class:`Evaluation` is :attr:`final`; the periodic ones are
    :attr:`history`.

    Under DDP every rank first takes rank 0's weights and buffers, embeds a contiguous shard of
    each image set, and the shards are gathered in order, so every rank holds exactly the
    embeddings a single process would compute; rank 0 scores and broadcasts the metrics.

    Args:
        make_scorer: Returns a new, unfitted scorer (one per evaluation).
        every_n_epochs: Also evaluate every N epochs during training (``None``: only at the end).
    """

    def __init__(self, make_scorer: Any, every_n_epochs: int | None = None) -> None:
        self.make_scorer = make_scorer
        self.every_n_epochs = every_n_epochs
        self.final: Evaluation | None = None
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
    def embed_all(
        trainer: L.Trainer, module: AnomalyModule, dm: AnomalyDataModule, images: Tensor
    ) -> Tensor:
        """Embeddings of ``images``; under DDP each rank embeds a shard and all are gathered."""
        world = trainer.world_size
        if len(images) == 0:  # e.g. no anomaly test images under protocol=classification
            return torch.zeros(0, module.embedder.embedding_dim)
        if world == 1:
            return module.embed(dm.eval_batches(images))
        per = math.ceil(len(images) / world)
        shard = images[trainer.global_rank * per : (trainer.global_rank + 1) * per]
        dim = module.embedder.embedding_dim
        local = module.embed(dm.eval_batches(shard)) if len(shard) else torch.zeros(0, dim)
        padded = torch.zeros(per, dim, dtype=local.dtype)
        padded[: len(local)] = local
        gathered = module.all_gather(padded.to(module.device))  # [world, per, dim]
        return gathered.reshape(world * per, dim)[: len(images)].float().cpu()

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, trainer: L.Trainer, module: AnomalyModule) -> Evaluation:
        """Evaluate the current weights (the same :class:`Evaluation` on every rank)."""
        dm = trainer.datamodule
        distributed = trainer.world_size > 1
        if distributed:
            self._sync_from_rank_zero(module)
        t0 = time.perf_counter()
        emb = {
            k: self.embed_all(trainer, module, dm, getattr(dm, v)) for k, v in EVAL_PARTS.items()
        }
        embed_s = time.perf_counter() - t0
        result: Evaluation | None = None
        if trainer.global_rank == 0:
            scorer = self.make_scorer()
            if dm.protocol == "classification":
                result = evaluate_classification(dm, emb, module.head, scorer.distance)
            else:
                result = evaluate_embeddings(dm, emb, scorer)
            result.embed_s = embed_s
        if distributed:
            result = trainer.strategy.broadcast(result, src=0)
        assert result is not None
        return result

    def _log(self, trainer: L.Trainer, metrics: dict[str, Any], prefix: str) -> None:
        if trainer.is_global_zero:
            for logger in trainer.loggers:  # W&B and the CSV beside it
                logger.log_metrics(
                    {f"{prefix}/{k}": v for k, v in metrics.items()}, step=trainer.global_step
                )

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: AnomalyModule) -> None:
        n = self.every_n_epochs
        last = trainer.current_epoch + 1 >= (trainer.max_epochs or 0)
        if n and (trainer.current_epoch + 1) % n == 0 and not last:
            result = self.evaluate(trainer, pl_module)
            self.history.append({"epoch": trainer.current_epoch + 1, **result.metrics})
            self._log(trainer, result.metrics, "val")

    def on_train_end(self, trainer: L.Trainer, pl_module: AnomalyModule) -> None:
        self.final = self.evaluate(trainer, pl_module)
        self._log(trainer, self.final.metrics, "test")
