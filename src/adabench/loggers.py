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
    from lightning.pytorch.loggers import CSVLogger, Logger

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
) -> list[Logger]:
    """``logger=wandb``: one W&B run per job, grouped by sweep, never prompting for a key.

    Returns the W&B logger and a CSV logger beside it (``csv/metrics.csv``, as with
    ``logger=csv``). The W&B config's first columns are what a sweep is grouped and filtered
    by (``loss``, ``dataset``, ``task``, ``seed``, ``protocol``, ``backbone``); the whole run
    config follows under ``cfg``. Offline, one line names the folder and the sync command.

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
        config=wandb_columns(config),
    )
    # Lightning always passes anonymous=None, which W&B (>= 0.19) answers with a deprecation
    # warning on every run; not passing it at all changes nothing else.
    init = getattr(logger, "_wandb_init", None)
    if isinstance(init, dict) and init.get("anonymous") is None:
        init.pop("anonymous", None)
    return [logger, csv_logger(run_dir, run_name, group, config)]


def wandb_columns(config: Mapping[str, Any]) -> dict[str, Any]:
    """The W&B config: the columns a sweep is grouped by, then the whole config under ``cfg``."""
    from adabench.config import build

    section = {k: (config.get(k) or {}) for k in ("loss", "dataset", "protocol", "backbone")}
    ds = section["dataset"]
    protocol = build(section["protocol"], where="protocol")
    return {
        "loss": section["loss"].get("name"),
        "dataset": ds.get("name"),
        "task": protocol.task(
            ds.get("name"), ds.get("normal"), ds.get("abnormal"), ds.get("reference")
        ),
        "seed": config.get("seed"),
        "protocol": section["protocol"].get("name", "anomaly"),
        "backbone": section["backbone"].get("name"),
        "cfg": redact(config),
    }


def loggers_of(logger: Any) -> list[Any]:
    """The logger(s) a logger factory returned, as a list (``False``/``None``: none)."""
    if not logger:
        return []
    return list(logger) if isinstance(logger, list | tuple) else [logger]


def log_scores(logger: Any, scores: Mapping[str, Any]) -> None:
    """W&B media of a run's test scores: the ROC curve and normal vs abnormal histograms."""
    from lightning.pytorch.loggers import WandbLogger

    runs = [lg for lg in loggers_of(logger) if isinstance(lg, WandbLogger)]
    if not runs or "score" not in scores:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import wandb

    from adabench.metrics import roc_curve

    score, abnormal = np.asarray(scores["score"]), np.asarray(scores["is_abnormal"]).astype(bool)
    fpr, tpr = roc_curve(score, abnormal)
    fig, (roc, hist) = plt.subplots(1, 2, figsize=(9, 4))
    roc.plot(fpr, tpr)
    roc.plot([0, 1], [0, 1], ls=":", color="tab:red")
    roc.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (test)")
    bins = np.histogram_bin_edges(score, bins=40)
    hist.hist(score[~abnormal], bins=bins, alpha=0.6, label="normal")
    hist.hist(score[abnormal], bins=bins, alpha=0.6, label="abnormal")
    hist.set(xlabel="anomaly score", ylabel="test images", title="scores (test)")
    hist.legend()
    fig.tight_layout()
    media = {
        "test/roc_and_scores": wandb.Image(fig),
        "test/roc": wandb.plot.line_series(
            xs=fpr.tolist(), ys=[tpr.tolist()], keys=["tpr"], title="ROC (test)", xname="fpr"
        ),
        "test/scores_normal": wandb.Histogram(score[~abnormal]),
        "test/scores_abnormal": wandb.Histogram(score[abnormal]),
    }
    plt.close(fig)
    for run in runs:
        run.experiment.log(media)


def finish_logger(logger: Logger | list[Logger] | bool, summary: Mapping[str, Any] | None) -> None:
    """Put the final metrics into the W&B summary and close the run, or flush another logger.

    Closing W&B lets the next job of a sweep start a fresh run; a no-training baseline run has
    no trainer to flush a CSV logger.
    """
    from lightning.pytorch.loggers import Logger, WandbLogger

    for one in loggers_of(logger):
        if isinstance(one, Logger) and not isinstance(one, WandbLogger):
            one.save()
        if isinstance(one, WandbLogger):
            if summary:
                one.experiment.summary.update(dict(summary))
            one.experiment.finish()
