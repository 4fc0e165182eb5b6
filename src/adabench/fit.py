"""Train a built run and evaluate it, or evaluate a no-training baseline: a :class:`RunResult`."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig

from adabench.build import BuiltRun, build_trainer, training_callbacks
from adabench.evaluation import EVAL_PARTS, PeriodicValidation, evaluate_model, log_metrics


@dataclass
class RunResult:
    """What a run produced.

    Attributes:
        metrics: The evaluation's metrics.
        scores: Per test image score and label (scores.npz), empty on non-zero DDP ranks.
        times: ``train_s``, ``embed_s``, ``score_s`` (seconds).
        facts: Everything else metrics.json records (data summary, epochs, history, …).
        writer: Whether this process writes the run's files (rank 0).
        split: Which images were in each part (split.json).
        embeddings: The scored embeddings and their labels (embeddings.npz, on request).
    """

    metrics: dict[str, float]
    scores: dict[str, np.ndarray] = field(default_factory=dict)
    times: dict[str, float] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    writer: bool = True
    split: dict[str, Any] = field(default_factory=dict)
    embeddings: dict[str, np.ndarray] = field(default_factory=dict)


def _built_facts(built: BuiltRun) -> dict[str, Any]:
    return {
        "baseline": built.baseline.kind if built.baseline else None,
        "protocol_info": built.dm.protocol.describe(),
        "backbone_info": built.backbone_info,
        "trunk_cache": built.cache_info,
        "data": built.dm.summary(),
    }


def fit_and_evaluate(
    cfg: DictConfig,
    built: BuiltRun,
    logger: Any,
    run_dir: Path,
    on_validation: Callable[[int, dict[str, float]], None] | None = None,
) -> RunResult:
    """Train ``built.module`` with the ``trainer`` group's Trainer, then evaluate it.

    ``on_validation`` receives each periodic validation (a tuner's pruning hook).
    """
    dm, protocol, history = built.dm, built.dm.protocol, []
    every = cfg.get("eval_every_n_epochs")
    periodic = PeriodicValidation(protocol, built.make_scorer, every, history, on_validation)
    trainer = build_trainer(cfg, run_dir, logger, [*training_callbacks(cfg), periodic])
    t0 = time.perf_counter()
    trainer.fit(built.module, datamodule=dm)
    final = evaluate_model(trainer, built.module, dm, protocol, built.make_scorer)
    log_metrics(trainer, final.validation, "val")
    log_metrics(trainer, final.metrics, "test")
    times = {
        "train_s": time.perf_counter() - t0 - final.embed_s - final.score_s,
        "embed_s": final.embed_s,
        "score_s": final.score_s,
    }
    metrics_cb = trainer.callback_metrics
    final.metrics.update(protocol.training_metrics(_float(metrics_cb.get("train/acc"))))
    facts = {
        **_built_facts(built),
        "validation": final.validation,
        "history": history,
        "epochs": trainer.current_epoch,
        "world_size": trainer.world_size,
        "train_loss": _float(metrics_cb.get("train/loss_epoch")),
        "train_acc": _float(metrics_cb.get("train/acc")),
    }
    return RunResult(
        final.metrics,
        final.scores,
        times,
        facts,
        trainer.is_global_zero,
        built.dm.split_record(),
        final.embeddings,
    )


def evaluate_baseline(built: BuiltRun) -> RunResult:
    """Score raw pixels or untrained backbone features through the usual scorer and metrics."""
    assert built.baseline is not None
    dm = built.dm
    t0 = time.perf_counter()
    trunk = dm.inputs == "trunk"
    emb = {
        part: built.baseline.vectors(built.embedder, dm.eval_batches(getattr(dm, attr)), trunk)
        for part, attr in EVAL_PARTS.items()
        if len(getattr(dm, attr))
    }
    width = next(iter(emb.values())).shape[1]
    emb = {part: emb.get(part, torch.zeros(0, width)) for part in EVAL_PARTS}
    embed_s = time.perf_counter() - t0
    scorer = built.make_scorer()  # fitted once on the normal vectors, for validation and test
    validation = dm.protocol.validate(dm, emb, None, scorer)
    result = dm.protocol.evaluate(dm, emb, None, scorer)
    times = {"train_s": 0.0, "embed_s": embed_s, "score_s": result.score_s}
    facts = {
        **_built_facts(built),
        "validation": validation,
        "epochs": 0,
        "world_size": 1,
        "embedding_dim": int(emb["train"].shape[1]),
    }
    return RunResult(
        result.metrics,
        result.scores,
        times,
        facts,
        split=dm.split_record(),
        embeddings=result.embeddings,
    )


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
