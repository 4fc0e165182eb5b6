"""Evaluation of a trained model: embed its images, let the protocol measure them.

The images are embedded (sharded under DDP) and the protocol measures the embeddings
(:mod:`adabench.embedding_eval`), returning an :class:`Evaluation`.

:func:`evaluate_model` runs after training (validation parts and test) and, through
:class:`PeriodicValidation`, every N epochs during it (validation parts only).
"""

from __future__ import annotations

import math
import time
from typing import Any

import lightning as L
import torch
from torch import Tensor

from adabench.data.datamodule import AnomalyDataModule
from adabench.embedding_eval import Evaluation
from adabench.lightning_module import AnomalyModule

EVAL_PARTS = {
    "train": "train_images",
    "val": "val_images",
    "test": "test_images",
    "closed": "closed_images",
}
VAL_PARTS = ("train", "val")  # what a validation during training embeds


def _sync_from_rank_zero(module: AnomalyModule) -> None:
    """Give every rank rank 0's parameters and buffers (BatchNorm statistics differ)."""
    import torch.distributed as dist

    for t in [*module.parameters(), *module.buffers()]:
        if t.dtype != torch.bool:
            dist.broadcast(t.data, src=0)


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


def evaluate_model(
    trainer: L.Trainer,
    module: AnomalyModule,
    dm: AnomalyDataModule,
    protocol: Any,
    make_scorer: Any,
    test: bool = True,
) -> Evaluation:
    """Evaluate the model's current weights: validation parts, and the test (``test=True``).

    The same :class:`Evaluation` on every rank: under DDP every rank first takes rank 0's
    weights and buffers, embeds a contiguous shard of each image set, and the shards are
    gathered in order (exactly the embeddings a single process computes); rank 0 scores and
    broadcasts. During training only the validation parts are embedded (``test=False``): no
    test image is looked at before the end.
    """
    distributed = trainer.world_size > 1
    if distributed:
        _sync_from_rank_zero(module)
    parts = EVAL_PARTS if test else {k: EVAL_PARTS[k] for k in VAL_PARTS}
    t0 = time.perf_counter()
    emb = {k: embed_all(trainer, module, dm, getattr(dm, v)) for k, v in parts.items()}
    embed_s = time.perf_counter() - t0
    result: Evaluation | None = None
    if trainer.global_rank == 0:
        scorer = make_scorer()  # fitted once on the normal embeddings, for validation and test
        validation = protocol.validate(dm, emb, module.head, scorer)
        result = protocol.evaluate(dm, emb, module.head, scorer) if test else Evaluation({})
        result.validation, result.embed_s = validation, embed_s
    if distributed:
        result = trainer.strategy.broadcast(result, src=0)
    assert result is not None
    return result


def log_metrics(trainer: L.Trainer, metrics: dict[str, Any], prefix: str) -> None:
    """Log ``metrics`` as ``<prefix>/<name>`` to every logger of ``trainer`` (rank 0)."""
    if trainer.is_global_zero and metrics:
        for logger in trainer.loggers:  # W&B and the CSV beside it
            logger.log_metrics(
                {f"{prefix}/{k}": v for k, v in metrics.items()}, step=trainer.global_step
            )


class PeriodicValidation(L.Callback):
    """Every ``every_n_epochs`` epochs (but the last), the validation metrics as ``val/*``.

    Only the validation parts are embedded and scored, never the test images. Each
    evaluation is appended to ``history`` (a list the caller owns).

    Args:
        protocol: The run's protocol (what validation means).
        make_scorer: Returns a new, unfitted scorer.
        every_n_epochs: How often (``None``: never).
        history: Receives ``{"epoch": n, **validation metrics}``.
        on_validation: Called with ``(epoch, validation metrics)`` after each evaluation; it
            may end the run by raising (a tuner's pruner: :class:`adabench.errors.RunPruned`).
    """

    def __init__(
        self,
        protocol: Any,
        make_scorer: Any,
        every_n_epochs: int | None,
        history: list,
        on_validation: Any = None,
    ) -> None:
        self.protocol, self.make_scorer = protocol, make_scorer
        self.every_n_epochs, self.history = every_n_epochs, history
        self.on_validation = on_validation

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: AnomalyModule) -> None:
        n = self.every_n_epochs
        last = trainer.current_epoch + 1 >= (trainer.max_epochs or 0)
        if n and (trainer.current_epoch + 1) % n == 0 and not last:
            dm = trainer.datamodule
            result = evaluate_model(
                trainer, pl_module, dm, self.protocol, self.make_scorer, test=False
            )
            self.history.append({"epoch": trainer.current_epoch + 1, **result.validation})
            log_metrics(trainer, result.validation, "val")
            if self.on_validation is not None:
                self.on_validation(trainer.current_epoch + 1, result.validation)
