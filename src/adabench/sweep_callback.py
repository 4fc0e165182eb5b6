"""Hydra callback (``conf/hydra/default.yaml``): how a sweep ends, and what to run next.

At the end of a multirun it lists the jobs that failed (stderr), prints one closing line on
stdout, ``N/M completed, K failed; next: adabench report <sweep folder>``, and exits 1 when a
job failed.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from adabench.files import RESULT_FILE, display_path, load_result


class SweepFailures(Callback):
    """Hydra callback: count the sweep's jobs, list its failures, say what comes next."""

    def __init__(self) -> None:
        self.started = 0.0
        self.jobs: list[bool] = []  # per job run in this process: did it complete?

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Remember when the sweep started (results older than that are not this sweep's).

        The sweep folder is made now: a tuning study keeps its storage (SQLite) in it before
        the first job runs.
        """
        self.started = time.time()
        self.jobs = []
        Path(config.hydra.sweep.dir).mkdir(parents=True, exist_ok=True)
        prepare_study(config)

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        """Count a job: completed unless it raised or returned NaN (a recorded failure)."""
        ok = job_return.status == JobStatus.COMPLETED
        value = job_return.return_value if ok else None
        self.jobs.append(ok and not (isinstance(value, float) and math.isnan(value)))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """Print the failed jobs and the closing line; exit 1 when a job failed."""
        sweep_dir = Path(config.hydra.sweep.dir)
        failed = failed_runs(sweep_dir, self.started)
        if self.jobs:  # the jobs ran in this process (the basic launcher)
            total, n_failed = len(self.jobs), self.jobs.count(False)
        else:  # another launcher ran them elsewhere: count what they wrote
            total, n_failed = len(written_since(sweep_dir, self.started)), len(failed)
        if failed:
            lines = [f"[adabench] {len(failed)} job(s) of the sweep failed:"]
            lines += [f"  {name}: {reason}  ({path})" for name, reason, path in failed]
            print("\n".join(lines), file=sys.stderr, flush=True)  # Hydra's own log shows no more
        print(closing_line(total - n_failed, total, n_failed, sweep_dir), flush=True)
        if failed or n_failed:
            raise SystemExit(1)


def prepare_study(config: DictConfig) -> None:
    """Create a tuning study's storage once, under a file lock, before the sweeper opens it.

    Several workers started on one study (hand-started processes, SLURM array jobs) would
    otherwise race to create the SQLite schema and all but one would fail.
    """
    sweeper = config.hydra.get("sweeper") or {}
    storage = sweeper.get("storage")
    if not storage or "optuna" not in str(sweeper.get("_target_", "")):
        return
    import fcntl

    import optuna

    with open(Path(config.hydra.sweep.dir) / ".study.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        optuna.create_study(
            storage=str(storage),
            study_name=sweeper.get("study_name"),
            direction=str(sweeper.get("direction", "maximize")),
            load_if_exists=True,
        )


def closing_line(completed: int, total: int, failed: int, sweep_dir: Path) -> str:
    """A sweep's last line: how many jobs completed and the command that reports them."""
    where = display_path(sweep_dir)
    quoted = f"'{where}'" if any(c.isspace() for c in where) else where
    return f"{completed}/{total} completed, {failed} failed; next: adabench report {quoted}"


def written_since(sweep_dir: Path, since: float) -> list[Path]:
    """The ``metrics.json`` files of ``sweep_dir``'s jobs written after ``since``."""
    return [p for p in sorted(sweep_dir.glob(f"*/{RESULT_FILE}")) if p.stat().st_mtime >= since]


def failed_runs(sweep_dir: Path, since: float = 0.0) -> list[tuple[str, str, Path]]:
    """(run name, reason, metrics.json) of each failed or interrupted run below ``sweep_dir``.

    Only runs whose metrics.json was written after ``since`` (a Unix time) count.
    """
    out = []
    for path in written_since(sweep_dir, since):
        try:
            rec = load_result(path)
        except (OSError, ValueError):
            continue
        if rec.get("status") in ("failed", "interrupted"):
            err = rec.get("error") or {}
            reason = f"{err.get('type', '?')}: {str(err.get('message', '')).splitlines()[0]}"
            out.append((str(rec.get("run_name")), reason, path))
    return out
