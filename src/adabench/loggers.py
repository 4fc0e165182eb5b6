"""Experiment loggers (W&B, CSV, none); W&B falls back to offline mode without an API key."""

from __future__ import annotations

import netrc
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import CSVLogger, Logger, WandbLogger

from adabench.errors import ConfigError

LOGGERS = ("none", "csv", "wandb")
_SECRET_HINTS = ("api_key", "apikey", "token", "password", "secret")


def wandb_api_key_available() -> bool:
    """True when W&B can authenticate without prompting (env var or ~/.netrc entry)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        auth = netrc.netrc().authenticators(
            os.environ.get("WANDB_BASE_URL", "api.wandb.ai")
            .removeprefix("https://")
            .removeprefix("http://")
        )
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False
    return bool(auth and auth[2])


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


def build_logger(
    cfg: Mapping[str, Any], run_dir: Path, run_name: str, group: str | None, config: dict
) -> Logger | bool:
    """Build the logger the ``logger`` config group names.

    W&B: ``mode: auto`` follows ``$WANDB_MODE`` when set, else runs online when an API key is
    available and offline otherwise, saying so in one line and never prompting.

    Raises:
        ConfigError: unknown logger kind.
    """
    kind = cfg.get("kind", "none")
    if kind == "none":
        return False
    if kind == "csv":
        return CSVLogger(save_dir=str(run_dir), name="", version="csv")
    if kind == "wandb":
        mode = cfg.get("mode", "auto")
        if mode not in ("auto", "online", "offline", "disabled"):
            raise ConfigError(
                f"logger.mode must be one of auto, online, offline, disabled, got {mode!r}."
            )
        if mode == "auto" and os.environ.get("WANDB_MODE"):
            mode = os.environ["WANDB_MODE"]
        elif mode == "auto":
            mode = "online" if wandb_api_key_available() else "offline"
            if mode == "offline":
                print(
                    f"W&B: no API key found (WANDB_API_KEY or `wandb login`); logging offline to "
                    f"{run_dir / 'wandb'} — upload later with `wandb sync {run_dir / 'wandb'}`."
                )
        os.environ.setdefault("WANDB_SILENT", "true")
        return WandbLogger(
            project=cfg.get("project", "adabench"),
            entity=cfg.get("entity"),
            name=run_name,
            group=cfg.get("group") or group,
            tags=list(cfg.get("tags") or []),
            save_dir=str(run_dir),
            mode=mode,
            config=redact(config),
        )
    raise ConfigError(f"Unknown logger '{kind}'. Valid choices: {', '.join(LOGGERS)}.")


def finish_logger(logger: Logger | bool, summary: Mapping[str, Any] | None) -> None:
    """Put the final metrics into the W&B summary and close the run, or flush another logger.

    Closing W&B lets the next job of a sweep start a fresh run; a no-training baseline run has
    no trainer to flush a CSV logger.
    """
    if isinstance(logger, Logger) and not isinstance(logger, WandbLogger):
        logger.save()
    if isinstance(logger, WandbLogger):
        if summary:
            logger.experiment.summary.update(dict(summary))
        logger.experiment.finish()
