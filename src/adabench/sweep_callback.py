"""Hydra callback (``conf/hydra/default.yaml``): how a sweep ends, and what to run next.

At the end of a multirun it lists the jobs that failed (stderr), prints one closing line on
stdout, ``N/M completed, K failed; next: adabench report <sweep folder>``, and exits 1 when a
job failed. The counts are what the jobs' folders hold on disk when the sweep ends: a job whose
folder another process was running in (a second sweep into the same folder) counts as what
that process left there, ``completed`` or ``still running in another process``.
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

from adabench.files import RESULT_FILE, display_path, load_result, read_result
from adabench.record import running_status

ACTIVE: SweepFailures | None = None  # the sweep this process runs (for the Ctrl-C line)


class SweepFailures(Callback):
    """Hydra callback: count the sweep's jobs, list its failures, say what comes next."""

    def __init__(self) -> None:
        self.started = 0.0
        self.jobs: list[tuple[Path | None, bool]] = []  # per job of this process: folder, ok
        self.total: int | None = None  # jobs in the sweep, when the basic sweeper runs it

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Remember when the sweep started (results older than that are not this sweep's)."""
        global ACTIVE
        self.started = time.time()
        self.jobs = []
        self.total = count_jobs(config)
        ACTIVE = self
        Path(config.hydra.sweep.dir).mkdir(parents=True, exist_ok=True)

    def completed_so_far(self) -> int:
        """Jobs of this process that completed (on disk) until now."""
        return sum(outcome_on_disk(f, ok, self.started) == "completed" for f, ok in self.jobs)

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        """Count a job: completed unless it raised or returned NaN (a recorded failure)."""
        ok = job_return.status == JobStatus.COMPLETED
        value = job_return.return_value if ok else None
        folder = (config.get("hydra") or {}).get("runtime", {}).get("output_dir")
        done = ok and not (isinstance(value, float) and math.isnan(value))
        self.jobs.append((Path(folder) if folder else None, done))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """Print the failed jobs and the closing line; exit 1 when a job failed."""
        sweep_dir = Path(config.hydra.sweep.dir)
        failed = failed_runs(sweep_dir, self.started)
        if self.jobs:  # the jobs ran in this process (the basic launcher)
            outcomes = [outcome_on_disk(f, ok, self.started) for f, ok in self.jobs]
        else:  # another launcher ran them elsewhere: count what they wrote
            outcomes = ["failed"] * len(failed)
            outcomes += ["completed"] * (len(written_since(sweep_dir, self.started)) - len(failed))
        n_failed, busy = outcomes.count("failed"), outcomes.count("running")
        if failed:
            lines = [f"[adabench] {len(failed)} job(s) of the sweep failed:"]
            lines += [f"  {name}: {reason}  ({path})" for name, reason, path in failed]
            print("\n".join(lines), file=sys.stderr, flush=True)  # Hydra's own log shows no more
        global ACTIVE
        ACTIVE = None
        completed = outcomes.count("completed")
        print(closing_line(completed, len(outcomes), n_failed, sweep_dir, busy), flush=True)
        if failed or n_failed:
            raise SystemExit(1)


def count_jobs(config: DictConfig) -> int | None:
    """How many jobs the basic sweeper makes of the sweep's lists (``None`` for other sweepers)."""
    sweeper = config.hydra.get("sweeper") or {}
    if "BasicSweeper" not in str(sweeper.get("_target_", "")):
        return None
    try:
        from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
        from hydra.core.override_parser.overrides_parser import OverridesParser

        params = [f"{k}={v}" for k, v in (sweeper.get("params") or {}).items()]
        parsed = OverridesParser.create().parse_overrides([*params, *config.hydra.overrides.task])
        return sum(len(batch) for batch in BasicSweeper.split_arguments(parsed, None))
    except Exception:  # noqa: BLE001 - a count for the Ctrl-C line only
        return None


def interrupted_line(run_name: str, reason: str, record_path: Path, sweep_dir: Path | None) -> str:
    """What the console says when Ctrl-C (or SIGTERM) stops a run: where, how far, how to resume.

    A sweep names the jobs completed so far and the command that resumes it (the same command
    with its sweep folder fixed); a single run says where it is recorded.
    """
    if sweep_dir is None:
        return (
            f"[adabench] {run_name}: {reason}; recorded as interrupted in "
            f"{display_path(record_path)}. Run the same command again to start it over."
        )
    done = ACTIVE.completed_so_far() if ACTIVE is not None else None
    total = ACTIVE.total if ACTIVE is not None else None
    count = f"{done}/{total} completed" if done is not None and total else "completed jobs kept"
    return (
        f"[adabench] {reason} during {run_name}: {count}; resume with: {resume_command(sweep_dir)}"
    )


def resume_command(sweep_dir: Path) -> str:
    """The command this process was started with, its sweep folder fixed (completed jobs skip)."""
    import shlex

    program = Path(sys.argv[0])
    head = ["adabench-train"] if program.name == "adabench-train" else ["python", sys.argv[0]]
    args = [a for a in sys.argv[1:] if not a.startswith("hydra.sweep.dir=")]
    return shlex.join([*head, *args, f"hydra.sweep.dir={display_path(sweep_dir)}"])


TAKEN: set[Path] = set()  # job folders another process held (run.run_job adds them)


def outcome_on_disk(folder: Path | None, ok: bool, since: float = 0.0) -> str:
    """``completed``, ``failed`` or ``running`` (by another live process): what a job left.

    A job skipped by resume leaves no folder of its own, and one that failed before its run
    started leaves no new record (``ok`` tells); a job whose folder another process held counts
    as what that process wrote there since the sweep started.
    """
    path = folder / RESULT_FILE if folder is not None else None
    fresh = path is not None and path.exists() and path.stat().st_mtime >= since
    fresh = fresh or (folder is not None and folder in TAKEN)  # the other process's record
    record = read_result(folder) if fresh else None
    if record is None:
        return "completed" if ok else "failed"
    status = record.get("status")
    if status == "running" and running_status(record) != "interrupted":
        return "running"
    return "completed" if status == "completed" else "failed"


def closing_line(completed: int, total: int, failed: int, sweep_dir: Path, busy: int = 0) -> str:
    """A sweep's last line: how many jobs completed and the command that reports them."""
    where = display_path(sweep_dir)
    quoted = f"'{where}'" if any(c.isspace() for c in where) else where
    elsewhere = f", {busy} still running in another process" if busy else ""
    return (
        f"{completed}/{total} completed, {failed} failed{elsewhere}; next: adabench report {quoted}"
    )


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
