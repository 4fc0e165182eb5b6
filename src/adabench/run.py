"""One adabench run from a composed config: data → training → scoring → metrics.json."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
import traceback
import warnings
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from adabench.io import atomic_write, write_json

RESULT_FILE = "metrics.json"
SCORES_FILE = "scores.npz"
_HASH_EXCLUDE = ("paths", "logger", "hydra")
_QUIET_WARNINGS = (  # noise from Lightning internals, not actionable by users
    ".*smaller than the logging interval.*",
    ".*LeafSpec.*",
    ".*does not have many workers.*",
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


def config_hash(cfg: DictConfig | dict) -> str:
    """Hash of everything in the config that can change a result (not paths or loggers)."""
    container = cfg if isinstance(cfg, dict) else OmegaConf.to_container(cfg, resolve=True)
    relevant = {k: v for k, v in container.items() if k not in _HASH_EXCLUDE}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True, default=str).encode()).hexdigest()[
        :16
    ]


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


def _hydra_context() -> tuple[Path | None, str | None, Path]:
    """(Hydra output dir, sweep group name or None, original working dir)."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hc = HydraConfig.get()
    except (ImportError, ValueError):
        return None, None, Path.cwd()
    group = None
    if hc.mode == RunMode.MULTIRUN:
        group = str(Path(hc.sweep.dir)).strip("/").replace("/", "_")
    return Path(hc.runtime.output_dir), group, Path(hc.runtime.cwd)


def _instantiate_or_none(cfg: Any) -> Any:
    from hydra.utils import instantiate

    if cfg is None or (hasattr(cfg, "get") and cfg.get("_target_") is None):
        return None
    return instantiate(cfg)


def train(cfg: DictConfig) -> float:
    """Run one training + evaluation and write ``metrics.json``; returns the AUROC.

    A failure is recorded as ``status: failed`` with its reason in ``metrics.json`` and then
    re-raised, so a Hydra multirun finishes its other jobs and exits non-zero at the end.
    """
    for pattern in _QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    out_dir, group, cwd = _hydra_context()
    run_dir = Path(cfg.get("paths", {}).get("output_dir") or out_dir or "outputs/run")
    run_dir.mkdir(parents=True, exist_ok=True)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    record: dict[str, Any] = {
        "status": "running",
        "run_name": cfg.get("run_name"),
        "loss": cfg.loss.name,
        "dataset": cfg.dataset.name,
        "backbone": cfg.backbone.name,
        "seed": int(cfg.seed),
        "config_hash": config_hash(resolved),
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    times: dict[str, float] = {}
    t_start = time.perf_counter()
    logger: Any = False
    try:
        metrics, extra, logger = _fit_and_evaluate(cfg, resolved, run_dir, group, times)
        record.update(status="completed", metrics=metrics, **extra)
    except BaseException as err:
        record.update(
            status="failed",
            error={
                "type": type(err).__name__,
                "message": str(err),
                "traceback": traceback.format_exc(limit=20),
            },
        )
        raise
    finally:
        times["total_s"] = time.perf_counter() - t_start
        record.update(
            times=times,
            finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            versions=package_versions(),
            git_commit=git_commit(cwd),
            config=_redacted(resolved),
        )
        write_json(run_dir / RESULT_FILE, record)
        _close_logger(logger, record)
    _print_result(record, run_dir)
    return float(record["metrics"]["auroc"])


def _redacted(resolved: dict) -> dict:
    from adabench.loggers import redact

    return redact(resolved)


def _close_logger(logger: Any, record: dict) -> None:
    from adabench.loggers import finish_logger

    summary = {f"test/{k}": v for k, v in (record.get("metrics") or {}).items()}
    summary["status"] = record["status"]
    try:
        finish_logger(logger, summary)
    except Exception as err:  # noqa: BLE001 - a logger failure must not hide the result
        print(f"warning: closing the logger failed: {err}")


def _fit_and_evaluate(
    cfg: DictConfig, resolved: dict, run_dir: Path, group: str | None, times: dict[str, float]
) -> tuple[dict, dict, Any]:
    import lightning as L
    import torch
    from hydra.utils import instantiate

    from adabench.data.datamodule import AnomalyDataModule
    from adabench.evaluation import AnomalyEvaluation
    from adabench.loggers import build_logger
    from adabench.losses import build_head
    from adabench.model import Embedder, create_backbone
    from adabench.module import AnomalyModule

    t0 = time.perf_counter()
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    L.seed_everything(int(cfg.seed), workers=True, verbose=False)
    dm = AnomalyDataModule(
        OmegaConf.to_container(cfg.dataset, resolve=True),
        seed=int(cfg.seed),
        batch_size=int(cfg.batch_size),
        eval_batch_size=int(cfg.eval_batch_size),
        cache_dir=cfg.paths.get("cache_dir"),
    )
    dm.setup("fit")
    bb = cfg.backbone
    backbone = create_backbone(
        bb.name,
        in_chans=int(cfg.dataset.channels),
        pretrained=bool(bb.get("pretrained", False)),
        checkpoint_path=bb.get("checkpoint_path"),
    )
    head_params = {
        k: v for k, v in OmegaConf.to_container(cfg.loss, resolve=True).items() if k != "name"
    }
    head = build_head(cfg.loss.name, int(bb.embedding_dim), dm.num_classes, **head_params)
    embedder = Embedder(backbone, int(bb.embedding_dim), dm.mean, dm.std)
    module = AnomalyModule(
        embedder,
        head,
        optimizer=instantiate(cfg.optimizer),
        scheduler=_instantiate_or_none(cfg.get("scheduler")),
    )
    sc = cfg.scorer
    if sc.name == "knn" or sc.name == "lof":
        from adabench.scoring import _check_k

        _check_k(int(sc.k), len(dm.split.normal_train))  # fail before training, not after
    evaluator = AnomalyEvaluation(
        scorer=sc.name,
        k=int(sc.k),
        metric=sc.get("metric", "cosine"),
        every_n_epochs=sc.get("every_n_epochs"),
    )
    logger = build_logger(cfg.logger, run_dir, str(cfg.run_name), group, _redacted(resolved))
    trainer = instantiate(
        cfg.trainer, logger=logger, callbacks=[evaluator], default_root_dir=str(run_dir)
    )
    times["setup_s"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    trainer.fit(module, datamodule=dm)
    times["train_s"] = (
        time.perf_counter()
        - t1
        - (evaluator.results or {}).get("embed_seconds", 0.0)
        - (evaluator.results or {}).get("score_seconds", 0.0)
    )
    results = dict(evaluator.results or {})
    times["embed_s"] = results.pop("embed_seconds", 0.0)
    times["score_s"] = results.pop("score_seconds", 0.0)
    if evaluator.scores is not None:
        scores = evaluator.scores

        def save(tmp: Path) -> None:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, **scores)

        atomic_write(run_dir / "scores.npz", save)
    extra = {
        "data": dm.summary(),
        "history": evaluator.history,
        "epochs": trainer.current_epoch,
        "train_loss": _final(trainer.callback_metrics.get("train/loss_epoch")),
        "train_acc": _final(trainer.callback_metrics.get("train/acc")),
    }
    if cfg.get("save_weights"):
        import torch as _torch

        _torch.save(module.state_dict(), run_dir / "model.pt")
    return results, extra, logger


def _final(value: Any) -> float | None:
    return None if value is None else float(value)


def _print_result(record: dict, run_dir: Path) -> None:
    m = record["metrics"]
    parts = [f"{k}={m[k]:.4f}" for k in ("auroc", "aupr", "fpr_at_95tpr", "nn_accuracy") if k in m]
    print(
        f"[adabench] {record['run_name']}: {' '.join(parts)} "
        f"({record['times']['total_s']:.1f}s) -> {run_dir / RESULT_FILE}"
    )
