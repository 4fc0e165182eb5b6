"""Upload a report's tables and plots to Weights & Biases (a run of job type ``report``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from adabench.files import sweep_group
from adabench.wandb_auth import wandb_mode


def log_to_wandb(
    tables: dict,
    out_dir: Path,
    plots: list[str],
    sources: Sequence[str],
    project: str = "adabench",
    group: str | None = None,
) -> None:
    """Log the summary tables and plots to a W&B run of job type ``report`` in the sweep's group."""
    import wandb

    mode = wandb_mode("auto")
    group = group or sweep_group(sources[0])
    run = wandb.init(
        project=project,
        group=group,
        job_type="report",
        name=f"report-{group}",
        dir=str(out_dir),
        mode=mode,
    )
    for key in ("summary", "paired", "failures"):
        headers, rows = tables[key]
        run.log({f"report/{key}": wandb.Table(columns=headers, data=rows)})
    for p in plots:
        run.log({f"report/{Path(p).stem}": wandb.Image(str(out_dir / p))})
    run.finish()
