"""A run's ``metrics.json``: provenance, the running → completed / failed lifecycle, resume.

``metrics.json`` is written (atomically) with ``status: running`` when a run starts, and with
``completed`` (metrics, times, facts) or ``failed`` (type, message, traceback) when it ends, so a
run killed outright is still visible. A completed record with the same config hash lets a
re-run skip the work (resume).
"""

from __future__ import annotations

import errno
import fcntl
import functools
import hashlib
import json
import math
import os
import shutil
import socket
import subprocess
import time
import traceback
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from adabench.files import RESULT_FILE, RUN_OUTPUTS, SUPERSEDED_DIR, read_result, write_json

# config keys that cannot change a result (threads, eval_batch_size: float rounding at most):
# left out of the resume hash, and never make two runs different rows in the report.
RESULT_NEUTRAL_KEYS = (
    "paths",
    "logger",
    "hydra",
    "resume",
    "threads",
    "eval_batch_size",
    "save_weights",
    "save_embeddings",
    "save_detector",
    "trainer.enable_progress_bar",
    "trainer.enable_model_summary",
    "trainer.log_every_n_steps",
)
PACKAGES = (
    "torch",
    "torchvision",
    "lightning",
    "timm",
    "torchmetrics",
    "faiss-cpu",
    "hydra-core",
    "numpy",
    "optuna",  # a tuning study's trials record the tuner that drew them (None: not installed)
)


def without_keys(config: dict, dotted: tuple[str, ...] = RESULT_NEUTRAL_KEYS) -> dict:
    """A copy of ``config`` without the ``dotted`` keys (``a.b`` removes ``config[a][b]``)."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in config.items()}
    for key in dotted:
        head, _, rest = key.partition(".")
        if not rest:
            out.pop(head, None)
        elif isinstance(out.get(head), dict):
            out[head] = without_keys(out[head], (rest,))
    return out


def config_hash(config: dict) -> str:
    """Hash of everything in a resolved config that can change a result.

    :data:`RESULT_NEUTRAL_KEYS` are left out.
    """
    blob = json.dumps(without_keys(config), sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages that shape a result."""
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_commit(cwd: str | Path) -> str | None:
    """The git commit of ``cwd`` (with ``-dirty`` when tracked files changed), if any.

    Read once per process and folder: the jobs of a sweep run the code that was loaded when it
    started, so a commit made while the sweep runs must not be recorded as theirs.
    """
    return _git_commit_once(str(Path(cwd).resolve()))


@functools.cache
def _git_commit_once(cwd: str) -> str | None:
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


LOCK_FILE = ".adabench.lock"  # held (flock) by the process that runs in a folder


class FolderTaken(Exception):
    """Another live process runs in this run folder (a second sweep, terminal or cluster job)."""


class FolderClaim:
    """Exclusive ownership of a run folder for the life of one run (an ``flock``).

    Two identical sweeps started into one folder (two terminals, a resubmitted cluster job)
    would otherwise set each other's live runs aside and write failure records over completed
    results. The lock is the kernel's: it is released when the process ends, however it ends
    (kill -9 included), so a stale lock never blocks a resume. On file systems without
    ``flock`` (some network mounts) a ``running`` record whose process is alive on this host
    counts as taken too.

    Raises:
        FolderTaken: the folder is held by another process.
    """

    RETRIES = 5  # a probe (adabench.tune.study.is_held) holds a lock for a moment

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / LOCK_FILE
        self._fh = open(self.path, "a+")  # noqa: SIM115 - held until release()
        for attempt in range(self.RETRIES):
            try:
                fcntl.flock(self._fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except OSError as err:
                if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    break  # no flock on this file system: ask the record instead
                if attempt == self.RETRIES - 1:
                    self._fh.close()
                    raise FolderTaken(_holder(run_dir)) from None
                time.sleep(0.1)
        record = read_result(run_dir)
        if (
            record
            and record.get("status") == "running"
            and record.get("pid") != os.getpid()
            and running_status(record) == "running"
        ):
            self.release()
            raise FolderTaken(_holder(run_dir))

    def release(self) -> None:
        """Give the folder up (closing the file releases the lock)."""
        if not self._fh.closed:
            self._fh.close()

    def __enter__(self) -> FolderClaim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _holder(run_dir: Path) -> str:
    record = read_result(run_dir) or {}
    who = f"pid {record.get('pid')} on {record.get('host')}" if record.get("pid") else "a process"
    return f"{run_dir} is in use by another process ({who})"


DETECTION_KEYS = ("auroc", "aupr", "fpr_at_95tpr")  # always finite in a sound anomaly result


def has_finite_metrics(record: dict[str, Any]) -> bool:
    """Whether a record's detection metrics are finite numbers (a NaN AUROC is damage)."""
    metrics = record.get("metrics") or {}
    return all(
        isinstance(metrics[k], int | float) and math.isfinite(metrics[k])
        for k in DETECTION_KEYS
        if k in metrics and metrics[k] is not None
    )


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
        if (
            rec
            and rec.get("status") == "completed"
            and rec.get("config_hash") == chash
            and has_finite_metrics(rec)  # a NaN metric is re-run, not trusted
        ):
            return d, rec
    return None


def running_status(record: dict[str, Any]) -> str:
    """What a ``running`` record is now: ``running``, ``interrupted`` or ``running or interrupted``.

    The record's pid is asked on its own host; from another host (a cluster launcher) nobody
    can tell.
    """
    pid = record.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return "interrupted"  # no process to ask about
    if record.get("host") != socket.gethostname():
        return "running or interrupted"
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return "interrupted"
    except PermissionError:  # exists, owned by someone else
        return "running"
    return "running"


def interrupt_reason(cause: BaseException) -> str:
    """What stopped a run, in words: a signal's name, or Ctrl-C."""
    text = str(cause).strip()
    if isinstance(cause, KeyboardInterrupt) and text:  # RunInterrupted names its signal
        return text
    return "interrupted by Ctrl-C (SIGINT)"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class RunRecord:
    """The ``metrics.json`` of one run folder (written only when ``writer`` is true).

    Args:
        run_dir: The run folder.
        fields: The record's opening fields (names, seed, config, provenance).
        writer: Whether this process writes (rank 0 of a DDP run).
    """

    def __init__(self, run_dir: Path, fields: dict[str, Any], writer: bool = True) -> None:
        self.path = run_dir / RESULT_FILE
        self.data: dict[str, Any] = {
            "status": "running",
            **fields,
            "started_at": _now(),
            "host": socket.gethostname(),  # with the pid: is a "running" record still running?
            "pid": os.getpid(),
        }
        self.writer = writer
        self._write()

    def completed(self, metrics: dict[str, float], facts: dict[str, Any]) -> None:
        """Mark the run completed with its metrics and facts (written by :meth:`close`)."""
        self.data.update(status="completed", metrics=metrics, **facts)

    def failed(self, cause: BaseException) -> None:
        """Mark the run failed with the cause's type, message and traceback.

        A run a tuner pruned (:class:`adabench.errors.RunPruned`) is ``pruned``: no error. An
        interrupt (Ctrl-C, SIGTERM, or the ``SystemExit`` Lightning turns them into) marks
        it ``interrupted`` instead, with what stopped it as the message.
        """
        from adabench.errors import RunPruned

        interrupted = isinstance(cause, KeyboardInterrupt | SystemExit)
        if isinstance(cause, RunPruned):
            self.data.update(status="pruned", pruned_after_epoch=cause.epoch)
            return
        self.data.update(
            status="interrupted" if interrupted else "failed",
            error={
                "type": type(cause).__name__,
                "message": interrupt_reason(cause) if interrupted else str(cause),
                "traceback": traceback.format_exc(limit=20),
            },
        )

    def close(self, times: dict[str, float]) -> None:
        """Write the final record with its timings."""
        self.data.update(times=times, finished_at=_now())
        self._write()

    def _write(self) -> None:
        if not self.writer:
            return
        if self.data["status"] != "completed" and self._completed_by_another():
            return  # a failure here never overwrites another process's completed result
        write_json(self.path, self.data)

    def _completed_by_another(self) -> bool:
        on_disk = read_result(self.path.parent) or {}
        return on_disk.get("status") == "completed" and (
            on_disk.get("pid"),
            on_disk.get("started_at"),
        ) != (self.data["pid"], self.data["started_at"])


def remove_if_empty(run_dir: Path, keep: Path) -> None:
    """Remove a skipped job's new folder when it holds only Hydra's files (no duplicate folders)."""
    if run_dir.resolve() == Path(keep).resolve():
        return
    own = [p for p in run_dir.iterdir() if p.name not in (".hydra", "train.log", LOCK_FILE)]
    if not own:
        shutil.rmtree(run_dir, ignore_errors=True)


def set_aside(run_dir: Path, chash: str) -> Path | None:
    """Move an earlier attempt's outputs out of the way before a run reuses its folder.

    A sweep re-run after its config changed (an edited preset, a new default) maps its jobs to
    the same folders, and a failed or interrupted job is re-run in its own: the new run must
    not overwrite what the old one measured or why it failed. The outputs go to
    ``superseded/<old config hash>/`` (``…-failed`` / ``…-running`` for an attempt that did not
    complete); the report does not count them. Only a completed result of the *same* config
    (re-run on purpose with ``resume=false``) is overwritten. Returns the folder, or None.
    """
    old = read_result(run_dir)
    if not old:
        return None
    status = str(old.get("status"))
    if status == "completed" and old.get("config_hash") == chash:
        return None
    name = str(old.get("config_hash") or "unknown") + (
        "" if status == "completed" else f"-{status}"
    )
    dest = run_dir / SUPERSEDED_DIR / name
    if dest.exists():  # set aside before: keep both
        dest = dest.with_name(f"{dest.name}-{datetime.now(timezone.utc):%Y%m%dT%H%M%S%f}")
    dest.mkdir(parents=True)
    for output in RUN_OUTPUTS:
        if (run_dir / output).exists():
            shutil.move(str(run_dir / output), str(dest / output))
    return dest
