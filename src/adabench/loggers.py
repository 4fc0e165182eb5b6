"""Experiment loggers (W&B, CSV, none); W&B falls back to offline mode without an API key.

``conf/logger/<name>.yaml`` names one of the factories below by ``_target_``; each takes the run
folder, run name, sweep group and config, plus its own parameters.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adabench.files import CSV_DIR
from adabench.wandb_auth import wandb_mode

if TYPE_CHECKING:  # Lightning loads when a logger is built, not when this module is imported
    from lightning.pytorch.loggers import CSVLogger, Logger, WandbLogger

_SECRET_HINTS = ("api_key", "apikey", "token", "password", "secret")


def redact(config: Any) -> Any:
    """A copy of ``config`` with values of secret-looking keys replaced by ``"***"``."""
    if isinstance(config, Mapping):
        return {
            k: "***" if any(h in str(k).lower() for h in _SECRET_HINTS) else redact(v)
            for k, v in config.items()
        }
    if isinstance(config, list | tuple):
        return [redact(v) for v in config]
    return config


def no_logger(run_dir: Path, run_name: str, group: str | None, config: dict) -> bool:
    """``logger=none``: nothing is logged (Lightning takes ``False``)."""
    return False


def csv_logger(run_dir: Path, run_name: str, group: str | None, config: dict) -> CSVLogger:
    """``logger=csv``: ``csv/metrics.csv`` in the run folder."""
    from lightning.pytorch.loggers import CSVLogger

    return CSVLogger(save_dir=str(run_dir), name="", version=CSV_DIR)


def wandb_logger(
    run_dir: Path,
    run_name: str,
    group: str | None,
    config: dict,
    project: str = "adabench",
    entity: str | None = None,
    sweep_group: str | None = None,
    tags: list[str] | None = None,
    mode: str = "auto",
) -> WandbLogger:
    """``logger=wandb``: one W&B run per job, grouped by sweep, never prompting for a key.

    Args:
        run_dir: The run folder (W&B writes below it).
        run_name: The W&B run's name.
        group: The sweep's name (``None`` outside a multirun).
        config: The run's resolved config (secrets redacted).
        project: W&B project.
        entity: W&B entity (``None``: the key's default).
        sweep_group: The W&B group (``None``: ``group``).
        tags: W&B tags.
        mode: ``auto``, ``online``, ``offline`` or ``disabled`` (:func:`wandb_mode`).
    """
    from lightning.pytorch.loggers import WandbLogger

    chosen = wandb_mode(mode, announce_in=run_dir)
    os.environ.setdefault("WANDB_SILENT", "true")
    logger = WandbLogger(
        project=project,
        entity=entity,
        name=run_name,
        group=sweep_group or group,
        tags=list(tags or []),
        save_dir=str(run_dir),
        mode=chosen,
        config=redact(config),
    )
    # Lightning always passes anonymous=None, which W&B (>= 0.19) answers with a deprecation
    # warning on every run; not passing it at all changes nothing else.
    init = getattr(logger, "_wandb_init", None)
    if isinstance(init, dict) and init.get("anonymous") is None:
        init.pop("anonymous", None)
    return logger


def finish_logger(logger: Logger | bool, summary: Mapping[str, Any] | None) -> None:
    """Put the final metrics into the W&B summary and close the run, or flush another logger.

    Closing W&B lets the next job of a sweep start a fresh run; a no-training baseline run has
    no trainer to flush a CSV logger.
    """
    from lightning.pytorch.loggers import Logger, WandbLogger

    if isinstance(logger, Logger) and not isinstance(logger, WandbLogger):
        logger.save()
    if isinstance(logger, WandbLogger):
        if summary:
            logger.experiment.summary.update(dict(summary))
        logger.experiment.finish()
