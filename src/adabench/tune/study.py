"""A row's Optuna study: its storage, sampler, pruner, budget, and trials that no process runs.

Storage: by default a journal file in the study's folder (``JournalFileBackend``), which serves
several processes on one machine or on a cluster's shared file system; for many machines an RDB
URL (``postgresql://…``). The budget counts per study, not per process: a trial counts once it
has finished (completed, pruned, or failed in its run); trials that no process ran to the end
(a killed worker, a draw over the budget) do not.
"""

from __future__ import annotations

import fcntl
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

JOURNAL_FILE = "optuna.journal"
SQLITE_FILE = "optuna.db"  # the Hydra sweeper's storage, before adabench tune
NOT_COUNTED = "not_counted"  # user attribute of a trial that no process finished, and why
RUN_DIR = "run_dir"  # user attribute: the trial's run folder
STALE_AFTER_S = 120.0  # a RUNNING trial this old whose folder no process holds was abandoned


def storage_of(study_dir: Path, url: str | None = None) -> Any:
    """The study's storage: ``url`` when given (an RDB URL), else the folder's journal file."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # adabench says what matters itself
    if url:
        return url
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    study_dir.mkdir(parents=True, exist_ok=True)
    if (study_dir / SQLITE_FILE).exists() and not (study_dir / JOURNAL_FILE).exists():
        adopt_sqlite(study_dir)
    return JournalStorage(JournalFileBackend(str(study_dir / JOURNAL_FILE)))


def adopt_sqlite(study_dir: Path) -> list[str]:
    """Move a study of the Hydra-sweeper era (``optuna.db``, Optuna 2) into a journal file.

    A copy of the SQLite file is upgraded to today's schema (``optuna storage upgrade``), every
    study in it is copied with its trials, values, states and attributes, and the journal is
    renamed into place; the old file is kept as ``optuna.db.before-journal``. Returns the
    studies' names.
    """
    import logging
    import shutil
    import tempfile
    import warnings

    from optuna.storages import JournalStorage, RDBStorage
    from optuna.storages.journal import JournalFileBackend

    logging.getLogger("alembic").setLevel(logging.WARNING)  # seven lines per schema step
    warnings.filterwarnings("ignore", category=FutureWarning, module="optuna")  # Optuna 2's names
    with tempfile.TemporaryDirectory(dir=study_dir) as tmp:
        db = Path(tmp) / SQLITE_FILE
        shutil.copy2(study_dir / SQLITE_FILE, db)
        old = RDBStorage(f"sqlite:///{db}", skip_compatibility_check=True)
        old.upgrade()
        journal = Path(tmp) / JOURNAL_FILE
        new = JournalStorage(JournalFileBackend(str(journal)))
        names = optuna.get_all_study_names(old)
        for name in names:
            optuna.copy_study(from_study_name=name, from_storage=old, to_storage=new)
        old.remove_session()
        journal.replace(study_dir / JOURNAL_FILE)
    (study_dir / SQLITE_FILE).rename(study_dir / f"{SQLITE_FILE}.before-journal")
    return names


def describe_storage(study_dir: Path, url: str | None) -> str:
    """Where a study lives, for the console (a URL without its password)."""
    if not url:
        return str(study_dir / JOURNAL_FILE)
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def open_study(storage: Any, name: str, direction: str, study_dir: Path) -> optuna.Study:
    """Create or load ``name``: under a file lock, so that workers started together agree."""
    study_dir.mkdir(parents=True, exist_ok=True)
    with open(study_dir / ".study.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        return optuna.create_study(
            storage=storage, study_name=name, direction=direction, load_if_exists=True
        )


def counts(trial: FrozenTrial) -> bool:
    """Whether a finished trial spends the budget (completed, pruned, or failed in its run)."""
    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    return trial.state == TrialState.FAIL and NOT_COUNTED not in trial.user_attrs


def finished(study: optuna.Study) -> int:
    """The trials that spent the study's budget."""
    return sum(counts(t) for t in study.get_trials(deepcopy=False))


def within_budget(study: optuna.Study, number: int, n_trials: int) -> bool:
    """Whether trial ``number`` is among the first ``n_trials`` that count or still run.

    Two workers can ask for the study's last trial at once; the lower number runs it.
    """
    live = sorted(
        t.number
        for t in study.get_trials(deepcopy=False)
        if counts(t) or t.state == TrialState.RUNNING
    )
    return number in live[:n_trials]


def sampler_seed(study: optuna.Study, base: int, worker: int) -> int:
    """The sampler seed of this process: ``base + worker`` on a new study, a new one on resuming.

    A process that joins a study with trials in it gets ``base + worker + 7919 × trials``, so a
    resumption never replays the draws of the start; every seed is appended to the study's
    ``sampler_seeds`` attribute with the trial count it started at.
    """
    before = len(study.get_trials(deepcopy=False))
    seed = base + worker + 7919 * before
    seeds = [*study.user_attrs.get("sampler_seeds", [])]
    study.set_user_attr(
        "sampler_seeds", [*seeds, {"seed": seed, "worker": worker, "trials_before": before}]
    )
    return seed


def not_counted(study: optuna.Study, trial_id: int, why: str) -> None:
    """Mark a trial failed without spending the budget (nobody ran it to the end)."""
    storage = study._storage  # noqa: SLF001 - Optuna's public API has no "fail trial by id"
    storage.set_trial_user_attr(trial_id, NOT_COUNTED, why)
    storage.set_trial_state_values(trial_id, TrialState.FAIL)


def fail_abandoned(study: optuna.Study, min_age_s: float = STALE_AFTER_S) -> list[int]:
    """Mark failed (not counted) the ``RUNNING`` trials that no live process runs.

    A live trial's run holds its folder's lock (:class:`adabench.record.FolderClaim`), which
    the kernel releases however the process ended (``kill -9`` included). A trial is abandoned
    when it started over ``min_age_s`` ago and its folder is free, or it never named one.
    """
    now = datetime.now()
    out = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if (now - t.datetime_start).total_seconds() < min_age_s:
            continue  # a worker between asking and starting its run
        folder = t.user_attrs.get(RUN_DIR)
        if folder and is_held(Path(folder)):
            continue
        not_counted(study, t._trial_id, "left running by a process that ended")  # noqa: SLF001
        out.append(t.number)
    return out


def is_held(run_dir: Path) -> bool:
    """Whether a live process holds ``run_dir`` (its lock file is locked)."""
    from adabench.record import LOCK_FILE

    path = run_dir / LOCK_FILE
    if not path.exists():
        return False
    with open(path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
    return False


def worker_index() -> int:
    """The index of this worker: ``ADABENCH_TUNE_WORKER``, else SLURM's array index, else 0."""
    for name in ("ADABENCH_TUNE_WORKER", "SLURM_ARRAY_TASK_ID"):
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return 0
