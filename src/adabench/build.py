"""Config → objects: data, embedder, loss head or baseline, scorer, trainer, logger. Nothing runs.

Every group is built by :func:`adabench.config.build` from its ``_target_``. Benchmarks and
tests build through :func:`build_run` too, so they measure what ``train.py`` runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from adabench.backbone import create_model, input_normalization
from adabench.baselines import Baseline
from adabench.config import as_dict, build, target_of
from adabench.data.datamodule import AnomalyDataModule
from adabench.embedder import Embedder
from adabench.errors import ConfigError
from adabench.lightning_module import AnomalyModule
from adabench.progress import CompactProgressBar
from adabench.scoring import Scorer, check_k
from adabench.stages import split_backbone
from adabench.trunk_cache import TrunkCache, module_digest, trunk_key


def build_datamodule(cfg: DictConfig) -> AnomalyDataModule:
    """The DataModule for ``cfg`` (not yet set up), with what a self-supervised head needs."""
    needs = None if is_baseline(cfg) else getattr(target_of(cfg.loss, "loss"), "data_needs", None)
    views, normal_only = needs(as_dict(cfg.loss)) if needs else (None, False)
    return AnomalyDataModule(
        as_dict(cfg.dataset),
        seed=int(cfg.seed),
        batch_size=int(cfg.batch_size),
        eval_batch_size=int(cfg.eval_batch_size),
        cache_dir=cfg.paths.get("cache_dir"),
        protocol=build(cfg.protocol, where="protocol"),  # its validation design built inside
        views=views,
        train_normal_only=normal_only,
    )


def build_embedder(cfg: DictConfig, dm: AnomalyDataModule) -> tuple[Embedder, dict[str, Any]]:
    """The :class:`Embedder` for ``cfg`` and a set-up ``dm``, and facts about it for the record.

    Pretrained weights (``backbone.weights`` or ``backbone.pretrained``) bring their own input
    normalisation; a backbone trained from scratch uses the training images' statistics.
    """
    bb = cfg.backbone
    channels = int(cfg.dataset.channels)
    model, source = create_model(
        bb.name,
        in_chans=channels,
        pretrained=bool(bb.get("pretrained", False)),
        weights=bb.get("weights"),
    )
    split = split_backbone(model, bb.get("freeze", 0), bb.get("out_stage"))
    mean, std, norm_from = input_normalization(model, channels, bool(source), dm.pixel_stats)
    embedder = Embedder(
        split.rest,
        int(bb.embedding_dim),
        mean,
        std,
        bool(bb.get("channels_last", False)),
        trunk=split.trunk,
        num_features=split.num_features,
    )
    info = {
        **source,
        "normalization": {"mean": mean, "std": std, "from": norm_from},
        "frozen_stages": split.frozen_stages,
        "out_stage": split.out_stage,
        "num_features": split.num_features,
        "trainable_params": sum(p.numel() for p in embedder.parameters() if p.requires_grad),
    }
    return embedder, info


def is_baseline(cfg: DictConfig) -> bool:
    """Whether the ``loss`` group names a no-training baseline rather than a loss head."""
    target = target_of(cfg.loss, "loss")
    return isinstance(target, type) and issubclass(target, Baseline)


def build_module(
    cfg: DictConfig, dm: AnomalyDataModule, embedder: Embedder | None = None
) -> AnomalyModule:
    """The LightningModule (embedder + loss head + optimizer) for ``cfg`` and a set-up ``dm``."""
    if embedder is None:
        embedder = build_embedder(cfg, dm)[0]
    head = build(
        cfg.loss,
        where="loss",
        embedding_dim=int(cfg.backbone.embedding_dim),
        num_classes=dm.num_classes,
    )
    scheduler = cfg.get("scheduler")
    return AnomalyModule(
        embedder,
        head,
        optimizer=build(cfg.optimizer, where="optimizer"),
        scheduler=build(scheduler, where="scheduler")
        if scheduler and scheduler.get("_target_")
        else None,
        backbone_lr_scale=float(cfg.backbone.get("lr_scale", 1.0)),
    )


def scorer_factory(cfg: DictConfig) -> Callable[[], Scorer]:
    """A function returning a new, unfitted scorer of the ``scorer`` group (checked now)."""
    spec = as_dict(cfg.scorer)
    build(spec, where="scorer")  # bad values fail before any training
    return lambda: build(spec, where="scorer")


def use_trunk_cache(
    cfg: DictConfig, dm: AnomalyDataModule, embedder: Embedder, info: dict
) -> dict[str, Any] | None:
    """Serve the frozen trunk's outputs from the trunk cache instead of images, when it can.

    It can when the backbone has a frozen trunk, ``backbone.cache_trunk`` is on and the
    augmentation is cacheable (flips are; pad-and-crop is not: then the trunk runs per batch).
    Returns what the cache did (for the record), or ``None`` when it was not used.
    """
    pad = int(cfg.dataset.get("pad_crop", 0) or 0)
    if embedder.trunk is None or not cfg.backbone.get("cache_trunk", True) or pad:
        return None
    key = trunk_key(
        model=cfg.backbone.name,
        weights=module_digest(embedder.trunk),
        frozen_stages=info["frozen_stages"],
        out_stage=info["out_stage"],
        channels=int(cfg.dataset.channels),
        image_size=int(cfg.dataset.image_size),
        normalization=info["normalization"],
        channels_last=bool(cfg.backbone.get("channels_last", False)),
    )
    cache = TrunkCache(cfg.paths.get("cache_dir"), key, int(cfg.eval_batch_size))
    t0 = time.perf_counter()
    dm.use_trunk_outputs(cache, embedder.trunk_outputs)
    return {
        "key": key,
        "computed": cache.computed,
        "reused": cache.reused,
        "seconds": time.perf_counter() - t0,
    }


@dataclass
class BuiltRun:
    """The objects of one run, built from its config (nothing trained yet)."""

    dm: AnomalyDataModule
    embedder: Embedder | None  # None for the raw-pixel baseline
    module: AnomalyModule | None  # None for the no-training baselines
    baseline: Baseline | None
    make_scorer: Callable[[], Scorer]
    backbone_info: dict[str, Any] = field(default_factory=dict)
    cache_info: dict[str, Any] | None = None


def build_run(cfg: DictConfig) -> BuiltRun:
    """Data (set up), embedder, LightningModule or baseline, scorer, trunk cache.

    Raises:
        ConfigError: a bad value, before any training (e.g. ``scorer.k`` larger than the
            normal training set).
    """
    dm = build_datamodule(cfg)
    dm.setup("fit")
    make_scorer = scorer_factory(cfg)
    if dm.protocol.scores_anomalies:  # fail before training, not after
        check_k(int(cfg.scorer.k), len(dm.split.normal_train))
    baseline = build(cfg.loss, where="loss") if is_baseline(cfg) else None
    needs = 0 if baseline is not None else getattr(target_of(cfg.loss, "loss"), "min_classes", 2)
    if dm.num_classes == 1 and needs > 1:  # more than one class: the head names its need
        raise ConfigError(
            f"loss={cfg.loss.name} learns to tell classes apart, but this split trains on one "
            f"class ({', '.join(dm.summary()['normal'])}), as protocol=one_vs_rest does. Use a "
            "no-training row (loss=baseline_features or loss=baseline_pixels), a self-supervised "
            "loss (loss=ntxent), or name "
            "reference classes (dataset.reference) under protocol=anomaly."
        )
    embedder, info = None, {}
    if baseline is None or baseline.needs_embedder:
        embedder, info = build_embedder(cfg, dm)
    module = None if baseline else build_module(cfg, dm, embedder)
    cached = embedder is not None and dm.views is None  # augmented views need the images
    cache_info = use_trunk_cache(cfg, dm, embedder, info) if cached else None
    if module is not None and dm.inputs == "trunk":
        module.inputs = "trunk"
    return BuiltRun(dm, embedder, module, baseline, make_scorer, info, cache_info)


def training_callbacks(cfg: DictConfig) -> list[Any]:
    """Callbacks that shape training: ``ema_decay`` averages the weights (EMAWeightAveraging).

    The weights (BatchNorm statistics too) become their moving average when training ends.
    """
    decay = cfg.get("ema_decay")
    if decay is None:
        return []
    if not 0.0 < float(decay) < 1.0:
        raise ConfigError(f"ema_decay must be in (0, 1) or null (off), got {decay}.")
    from lightning.pytorch.callbacks import EMAWeightAveraging

    return [EMAWeightAveraging(decay=float(decay))]


def build_logger(cfg: DictConfig, run_dir: Path, group: str | None, config: dict) -> Any:
    """The logger of the ``logger`` group (``False`` for none)."""
    return build(
        cfg.logger,
        where="logger",
        run_dir=run_dir,
        run_name=str(cfg.run_name),
        group=group,
        config=config,
    )


def build_trainer(cfg: DictConfig, run_dir: Path, logger: Any, callbacks: list[Any]) -> Any:
    """The Lightning Trainer of the ``trainer`` group with the run's logger and callbacks.

    With the progress bar on, it is :class:`CompactProgressBar` (one line per epoch).
    """
    if cfg.trainer.get("enable_progress_bar", True):
        callbacks = [*callbacks, CompactProgressBar()]
    return build(
        cfg.trainer,
        where="trainer",
        logger=logger,
        callbacks=callbacks,
        default_root_dir=str(run_dir),
    )


def load_saved_weights(module: Any, path: str | Path) -> Any:
    """Load a ``model.pt`` state dict into ``module`` (``weights_only=True``: no pickled code)."""
    module.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return module
