"""One adabench run from a composed config: data → training → scoring → metrics.json."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import time
import traceback
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from adabench.errors import ConfigError
from adabench.io import RESULT_FILE, SCORES_FILE, atomic_write, write_json
from adabench.loggers import finish_logger, redact
from adabench.runtime import configure_process

WEIGHTS_FILE = "model.pt"
_HASH_EXCLUDE = ("paths", "logger", "hydra", "resume")
_QUIET_WARNINGS = (  # noise from Lightning internals, not actionable by users
    ".*smaller than the logging interval.*",
    ".*LeafSpec.*",
    ".*does not have many workers.*",
    ".*module\\(s\\) in eval mode.*",  # the frozen trunk, on purpose
)
_PACKAGES = (
    "torch",
    "torchvision",
    "lightning",
    "timm",
    "torchmetrics",
    "faiss-cpu",
    "hydra-core",
    "numpy",
)


_INDEX_KEYS = ("index", "approx_min_size", "nprobe", "use_gpu")


class RunInterrupted(KeyboardInterrupt):
    """The run received SIGTERM (a scheduler's time limit, ``kill``) and stopped.

    Like Ctrl-C it is not an ``Exception``: the run records ``status: failed`` and the whole
    sweep stops (a multirun goes on after a job's *error*, not after the process is told to
    end).
    """


def config_hash(cfg: DictConfig | dict) -> str:
    """Hash of everything in the config that can change a result (not paths or loggers)."""
    container = cfg if isinstance(cfg, dict) else OmegaConf.to_container(cfg, resolve=True)
    relevant = {k: v for k, v in container.items() if k not in _HASH_EXCLUDE}
    blob = json.dumps(relevant, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages that shape a result."""
    out: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_commit(cwd: str | Path) -> str | None:
    """The current git commit of ``cwd`` (with ``-dirty`` when there are changes), if any."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5
        )
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def read_result(run_dir: str | Path) -> dict | None:
    """The run's ``metrics.json``, or ``None`` when missing or unreadable."""
    try:
        return json.loads((Path(run_dir) / RESULT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def is_rank_zero() -> bool:
    """False in the extra processes of a multi-process (DDP) run, which must write nothing."""
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    return getattr(rank_zero_only, "rank", 0) == 0


def parallel_jobs() -> int:
    """How many jobs a Hydra joblib launcher runs at once (1 for any other launcher)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        launcher = HydraConfig.get().launcher
    except (ImportError, ValueError):
        return 1
    if "Joblib" not in str(launcher.get("_target_", "")):
        return 1
    n = int(launcher.get("n_jobs") or 1)
    return (os.cpu_count() or 1) if n < 0 else n


def threads_per_job(jobs: int, cpus: int | None = None) -> int:
    """Torch threads for each of ``jobs`` parallel jobs so they don't oversubscribe the cores."""
    return max(1, (cpus or os.cpu_count() or 1) // max(1, jobs))


def find_completed(
    run_dir: Path, chash: str, sweep_dir: Path | None = None
) -> tuple[Path, dict] | None:
    """A completed result for config hash ``chash`` in ``run_dir`` or a job folder of the sweep.

    Looking through the whole sweep lets a sweep re-run with more values, or in another order,
    skip the jobs it already finished.
    """
    candidates = [run_dir]
    if sweep_dir is not None and sweep_dir.is_dir():
        candidates += sorted(p.parent for p in sweep_dir.glob(f"*/{RESULT_FILE}"))
    for d in candidates:
        rec = read_result(d)
        if rec and rec.get("status") == "completed" and rec.get("config_hash") == chash:
            return d, rec
    return None


def _hydra_context() -> tuple[Path | None, str | None, Path, Path | None]:
    """(Hydra output dir, sweep group name or None, original working dir, sweep dir or None)."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hc = HydraConfig.get()
    except (ImportError, ValueError):
        return None, None, Path.cwd(), None
    group = sweep = None
    if hc.mode == RunMode.MULTIRUN:
        sweep = Path(hc.sweep.dir)
        group = str(sweep).strip("/").replace("/", "_")
    return Path(hc.runtime.output_dir), group, Path(hc.runtime.cwd), sweep


def loss_label(cfg: DictConfig) -> str:
    """The loss's name in results and reports.

    The ``loss`` config option chosen (``arcface_s16``), so that variants of one head stay apart;
    ``loss.name`` outside Hydra.
    """
    try:
        from hydra.core.hydra_config import HydraConfig

        choice = HydraConfig.get().runtime.choices.get("loss")
    except (ImportError, ValueError):
        choice = None
    return str(choice or cfg.loss.name)


@contextlib.contextmanager
def _sigterm_raises(received: list[RunInterrupted]) -> Iterator[None]:
    """Turn SIGTERM into :class:`RunInterrupted` so the failure is recorded, not lost.

    The exception is also appended to ``received``: Lightning turns interrupts into
    ``SystemExit``, and the record must still say what happened.
    """

    def handler(signum: int, frame: Any) -> None:
        received.append(RunInterrupted(f"received signal {signal.Signals(signum).name}"))
        raise received[-1]

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def train(cfg: DictConfig) -> float:
    """Run one training + evaluation and write ``metrics.json``; returns the AUROC.

    ``metrics.json`` is written (atomically) with ``status: running`` at the start, and with
    ``completed`` or ``failed`` (type, message, traceback) at the end, so a run killed outright
    is still visible. Failures are re-raised: a Hydra multirun runs its other jobs and then
    exits non-zero. With ``resume: true`` a run is skipped when its folder, or any job folder
    of its sweep, already holds a completed result for the same config hash. Under DDP only
    rank 0 writes files.
    """
    for pattern in _QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    out_dir, group, cwd, sweep_dir = _hydra_context()
    run_dir = Path(cfg.get("paths", {}).get("output_dir") or out_dir or "outputs/run")
    run_dir.mkdir(parents=True, exist_ok=True)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    chash = config_hash(resolved)
    done = find_completed(run_dir, chash, sweep_dir) if cfg.get("resume", True) else None
    if done is not None and is_rank_zero():
        where, previous = done
        print(f"[adabench] {cfg.run_name}: already completed in {where}, skipped (resume)")
        return float(previous["metrics"]["auroc"])
    record: dict[str, Any] = {
        "status": "running",
        "run_name": cfg.get("run_name"),
        "loss": loss_label(cfg),
        "dataset": cfg.dataset.name,
        "backbone": cfg.backbone.name,
        "seed": int(cfg.seed),
        "baseline": cfg.loss.get("baseline") or None,
        "config_hash": chash,
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": package_versions(),
        "process": configure_process(),
        "git_commit": git_commit(cwd),
        "config": redact(resolved),
    }
    writer = is_rank_zero()
    if writer:
        write_json(run_dir / RESULT_FILE, record)
    times: dict[str, float] = {}
    loggers: list[Any] = []
    t_start = time.perf_counter()
    interrupts: list[RunInterrupted] = []
    try:
        with _sigterm_raises(interrupts):
            metrics, extra = _fit_and_evaluate(
                cfg, record["config"], run_dir, group, times, loggers
            )
        record.update(status="completed", metrics=metrics, **extra)
    except BaseException as err:
        # an interrupt reaches here as SystemExit from Lightning's interrupt handling
        cause = interrupts[0] if interrupts else err
        record.update(
            status="failed",
            error={
                "type": type(cause).__name__,
                "message": str(cause),
                "traceback": traceback.format_exc(limit=20),
            },
        )
        raise
    finally:
        times["total_s"] = time.perf_counter() - t_start
        record.update(
            times=times, finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds")
        )
        if writer:
            write_json(run_dir / RESULT_FILE, record)
            for logger in loggers:
                _close_logger(logger, record)
    if writer:
        _print_result(record, run_dir)
    return float(record["metrics"]["auroc"])


def _close_logger(logger: Any, record: dict) -> None:
    summary = {f"test/{k}": v for k, v in (record.get("metrics") or {}).items()}
    summary["status"] = record["status"]
    try:
        finish_logger(logger, summary)
    except Exception as err:  # noqa: BLE001 - a logger failure must not hide the result
        print(f"warning: closing the logger failed: {err}")


def build_datamodule(cfg: DictConfig) -> Any:
    """The DataModule for ``cfg`` (not yet set up)."""
    from adabench.data.datamodule import AnomalyDataModule

    return AnomalyDataModule(
        OmegaConf.to_container(cfg.dataset, resolve=True),
        seed=int(cfg.seed),
        batch_size=int(cfg.batch_size),
        eval_batch_size=int(cfg.eval_batch_size),
        cache_dir=cfg.paths.get("cache_dir"),
    )


def build_embedder(cfg: DictConfig, dm: Any) -> tuple[Any, dict[str, Any]]:
    """The :class:`Embedder` for ``cfg`` and a set-up ``dm``, and facts about it for the record.

    Pretrained weights (``backbone.weights`` or ``backbone.pretrained``) bring their own input
    normalisation; a backbone trained from scratch uses the training images' statistics.
    """
    from adabench.backbone import create_model, input_normalization, split_backbone
    from adabench.model import Embedder

    bb = cfg.backbone
    weights = bb.get("weights")
    model, source = create_model(
        bb.name,
        in_chans=int(cfg.dataset.channels),
        pretrained=bool(bb.get("pretrained", False)),
        weights=weights,
    )
    split = split_backbone(model, bb.get("freeze", 0), bb.get("out_stage"))
    mean, std, norm_from = input_normalization(
        model, int(cfg.dataset.channels), bool(source), dm.mean, dm.std
    )
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


def build_module(cfg: DictConfig, dm: Any, embedder: Any = None) -> Any:
    """The LightningModule (embedder + loss head + optimizer) for ``cfg`` and a set-up ``dm``."""
    from hydra.utils import instantiate

    from adabench.losses import build_head
    from adabench.module import AnomalyModule

    if embedder is None:
        embedder = build_embedder(cfg, dm)[0]
    loss = OmegaConf.to_container(cfg.loss, resolve=True)
    params = {k: v for k, v in loss.items() if k != "name"}
    head = build_head(loss["name"], int(cfg.backbone.embedding_dim), dm.num_classes, **params)
    scheduler = cfg.get("scheduler")
    return AnomalyModule(
        embedder,
        head,
        optimizer=instantiate(cfg.optimizer),
        scheduler=instantiate(scheduler) if scheduler and scheduler.get("_target_") else None,
        backbone_lr_scale=float(cfg.backbone.get("lr_scale", 1.0)),
    )


def use_trunk_cache(cfg: DictConfig, dm: Any, embedder: Any, info: dict) -> dict[str, Any] | None:
    """Serve the frozen trunk's outputs from the trunk cache instead of images, when it can.

    It can when the backbone has a frozen trunk, ``backbone.cache_trunk`` is on and the
    augmentation is cacheable (flips are; pad-and-crop is not: then the trunk runs per batch).
    Returns what the cache did (for the record), or ``None`` when it was not used.
    """
    from adabench.trunk_cache import TrunkCache, module_digest, trunk_key

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

    dm: Any
    embedder: Any | None  # None for the raw-pixel baseline
    module: Any | None  # None for the no-training baselines
    baseline: str | None
    backbone_info: dict[str, Any] = field(default_factory=dict)
    cache_info: dict[str, Any] | None = None


def build_run(cfg: DictConfig) -> BuiltRun:
    """Data (set up), embedder, LightningModule, trunk cache: everything a run trains and scores.

    Benchmarks and tests build through this too, so they measure what ``train.py`` runs.

    Raises:
        ConfigError: a bad value, before any training (e.g. ``scorer.k`` larger than the
            normal training set).
    """
    from adabench.scoring import check_k

    dm = build_datamodule(cfg)
    dm.setup("fit")
    check_k(int(cfg.scorer.k), len(dm.split.normal_train))  # fail before training, not after
    baseline = baseline_kind(cfg)
    embedder, info = (None, {}) if baseline == "pixels" else build_embedder(cfg, dm)
    module = None if baseline else build_module(cfg, dm, embedder)
    cache_info = use_trunk_cache(cfg, dm, embedder, info) if embedder is not None else None
    if module is not None and dm.inputs == "trunk":
        module.inputs = "trunk"
    return BuiltRun(dm, embedder, module, baseline, info, cache_info)


def training_callbacks(cfg: DictConfig) -> list[Any]:
    """Callbacks that shape training (they run before the evaluation callback).

    ``ema_decay`` set: the weights are replaced by their exponential moving average (Lightning's
    ``EMAWeightAveraging``, BatchNorm statistics averaged too) when training ends, so the
    evaluation scores the averaged model.
    """
    decay = cfg.get("ema_decay")
    if decay is None:
        return []
    if not 0.0 < float(decay) < 1.0:
        raise ConfigError(f"ema_decay must be in (0, 1) or null (off), got {decay}.")
    from lightning.pytorch.callbacks import EMAWeightAveraging

    return [EMAWeightAveraging(decay=float(decay))]


def _fit_and_evaluate(
    cfg: DictConfig,
    config: dict,
    run_dir: Path,
    group: str | None,
    times: dict[str, float],
    loggers: list[Any],
) -> tuple[dict, dict]:
    import lightning as L
    import torch
    from hydra.utils import instantiate

    from adabench.evaluation import AnomalyEvaluation
    from adabench.loggers import build_logger

    t0 = time.perf_counter()
    threads = cfg.get("threads")
    if threads is None and parallel_jobs() > 1:  # parallel jobs must not oversubscribe cores
        threads = threads_per_job(parallel_jobs())
    if threads:
        torch.set_num_threads(int(threads))
        times["threads"] = int(threads)
    L.seed_everything(int(cfg.seed), workers=True, verbose=False)
    built = build_run(cfg)
    dm, embedder, module = built.dm, built.embedder, built.module
    sc = cfg.scorer
    extra_info = {"backbone_info": built.backbone_info, "trunk_cache": built.cache_info}
    logger = build_logger(cfg.logger, run_dir, str(cfg.run_name), group, config)
    loggers.append(logger)
    if built.baseline:
        times["setup_s"] = time.perf_counter() - t0
        results, extra = _evaluate_baseline(cfg, dm, embedder, built.baseline, run_dir, times)
        if logger and is_rank_zero():
            logger.log_metrics({f"test/{k}": v for k, v in results.items()}, step=0)
        return results, {**extra, **extra_info}
    evaluator = AnomalyEvaluation(**scorer_options(sc), every_n_epochs=sc.get("every_n_epochs"))
    trainer = instantiate(
        cfg.trainer,
        logger=logger,
        callbacks=[*training_callbacks(cfg), evaluator],
        default_root_dir=str(run_dir),
    )
    times["setup_s"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    trainer.fit(module, datamodule=dm)
    results = dict(evaluator.results or {})
    times["embed_s"] = results.pop("embed_seconds", 0.0)
    times["score_s"] = results.pop("score_seconds", 0.0)
    times["train_s"] = time.perf_counter() - t1 - times["embed_s"] - times["score_s"]
    if not trainer.is_global_zero:
        return results, {}
    if evaluator.scores is not None:
        _save_scores(run_dir / SCORES_FILE, evaluator.scores)
    if cfg.get("save_weights"):
        atomic_write(run_dir / WEIGHTS_FILE, lambda tmp: torch.save(module.state_dict(), tmp))
    extra = {
        **extra_info,
        "data": dm.summary(),
        "history": evaluator.history,
        "epochs": trainer.current_epoch,
        "world_size": trainer.world_size,
        "train_loss": _float(trainer.callback_metrics.get("train/loss_epoch")),
        "train_acc": _float(trainer.callback_metrics.get("train/acc")),
    }
    return results, extra


def baseline_kind(cfg: DictConfig) -> str | None:
    """``pixels`` or ``features`` for a no-training baseline run (``loss.baseline``), else None."""
    from adabench.baselines import check_baseline

    kind = cfg.loss.get("baseline")
    if kind:
        check_baseline(str(kind))
    return str(kind) if kind else None


def scorer_options(sc: DictConfig) -> dict[str, Any]:
    """The ``scorer`` config group as the arguments of :class:`AnomalyEvaluation`."""
    return {
        "scorer": sc.name,
        "k": int(sc.k),
        "metric": sc.get("metric", "cosine"),
        "index_options": {k: sc[k] for k in _INDEX_KEYS if sc.get(k) is not None},
    }


def _evaluate_baseline(
    cfg: DictConfig, dm: Any, embedder: Any, kind: str, run_dir: Path, times: dict[str, float]
) -> tuple[dict, dict]:
    """Score raw pixels or untrained backbone features through the usual scorer and metrics."""
    from adabench.baselines import feature_vectors, pixel_vectors
    from adabench.evaluation import evaluate_embeddings

    t0 = time.perf_counter()
    parts = (dm.train_images, dm.test_images, dm.closed_images)
    if kind == "pixels":
        train_emb, test_emb, closed_emb = (pixel_vectors(x) for x in parts)
    else:
        trunk = dm.inputs == "trunk"
        train_emb, test_emb, closed_emb = (
            feature_vectors(embedder, dm.eval_batches(x), trunk) for x in parts
        )
    t1 = time.perf_counter()
    opts = scorer_options(cfg.scorer)
    results, scores = evaluate_embeddings(
        dm,
        train_emb,
        test_emb,
        closed_emb,
        opts["scorer"],
        opts["k"],
        opts["metric"],
        **opts["index_options"],
    )
    times.update(train_s=0.0, embed_s=t1 - t0, score_s=time.perf_counter() - t1)
    if is_rank_zero():
        _save_scores(run_dir / SCORES_FILE, scores)
    extra = {
        "data": dm.summary(),
        "epochs": 0,
        "world_size": 1,
        "embedding_dim": train_emb.shape[1],
    }
    return results, extra


def _save_scores(path: Path, scores: dict[str, np.ndarray]) -> None:
    def save(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **scores)

    atomic_write(path, save)


def load_weights(module: Any, path: str | Path) -> Any:
    """Load a ``model.pt`` state dict into ``module`` (``weights_only=True``: no pickled code)."""
    import torch

    module.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return module


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _print_result(record: dict, run_dir: Path) -> None:
    m = record["metrics"]
    keys = ("auroc", "aupr", "fpr_at_95tpr", "nn_accuracy")
    parts = [f"{k}={m[k]:.4f}" for k in keys if k in m]
    print(
        f"[adabench] {record['run_name']}: {' '.join(parts)} "
        f"({record['times']['total_s']:.1f}s) -> {run_dir / RESULT_FILE}"
    )
