"""Where a run stands, read once from Hydra's runtime: folders, sweep, launcher, process rank."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from adabench.files import sweep_group


@dataclass(frozen=True)
class RunContext:
    """Facts about the process a run is in (all defaults when Hydra is not running).

    Attributes:
        output_dir: Hydra's output folder for this run (``None`` outside Hydra).
        cwd: The working directory the command was started in (for ``git``).
        sweep_dir: The multirun's sweep folder (``None`` in a single run).
        group: The sweep's group name (W&B group, report title), ``None`` in a single run.
        parallel_jobs: Jobs a joblib launcher runs at once (1 for any other launcher).
        on_validation: Called with ``(epoch, validation metrics)`` after each periodic
            validation (``eval_every_n_epochs``); a tuner reports to its trial there, and may
            stop the run by raising :class:`adabench.errors.RunPruned`.
    """

    output_dir: Path | None = None
    cwd: Path = Path(".")
    sweep_dir: Path | None = None
    group: str | None = None
    parallel_jobs: int = 1
    on_validation: Callable[[int, dict[str, float]], None] | None = None

    @classmethod
    def from_hydra(cls) -> RunContext:
        """The context of the running Hydra job, or the defaults outside Hydra."""
        try:
            from hydra.core.hydra_config import HydraConfig
            from hydra.types import RunMode

            hc = HydraConfig.get()
        except (ImportError, ValueError):
            return cls(cwd=Path.cwd())
        sweep = Path(hc.sweep.dir) if hc.mode == RunMode.MULTIRUN else None
        launcher = hc.launcher
        jobs = 1
        if "Joblib" in str(launcher.get("_target_", "")):
            n = int(launcher.get("n_jobs") or 1)
            jobs = (os.cpu_count() or 1) if n < 0 else n
        return cls(
            output_dir=Path(hc.runtime.output_dir),
            cwd=Path(hc.runtime.cwd),
            sweep_dir=sweep,
            group=sweep_group(sweep) if sweep else None,
            parallel_jobs=jobs,
        )


def threads_per_job(jobs: int, cpus: int | None = None) -> int:
    """Torch threads for each of ``jobs`` parallel jobs so they don't oversubscribe the cores."""
    return max(1, (cpus or os.cpu_count() or 1) // max(1, jobs))


RANK_VARIABLES = ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")  # Lightning's


def is_rank_zero() -> bool:
    """False in the extra processes of a multi-process (DDP) run, which must write nothing.

    Lightning's own answer once it is loaded; before that, the environment variables it reads
    (so that a config error is refused before Lightning is imported).
    """
    import sys

    module = sys.modules.get("lightning.fabric.utilities.rank_zero")
    if module is not None:
        return getattr(module.rank_zero_only, "rank", 0) == 0
    for name in RANK_VARIABLES:
        if os.environ.get(name) not in (None, ""):
            return int(os.environ[name]) == 0
    return True
