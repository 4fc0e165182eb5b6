"""Run a plan: each row's study to its budget (ask/tell), then its best on fresh test seeds.

Every process (``--workers N`` starts N; SLURM array jobs start one each) runs the same loop
over the rows: it joins each row's study, asks for trials until the study has its budget, runs
them with ``train.py``'s code, then runs the re-runs that no other process holds. The budget,
the trials and the re-runs are shared through the storage and the run folders' locks, so any
number of processes, started at any time, lose and repeat nothing.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import TrialState

from adabench.console import error_text, report_failure, say
from adabench.errors import ConfigError, DataError, RunPruned
from adabench.record import FolderTaken
from adabench.tune import study as st
from adabench.tune.plan import Plan, Row
from adabench.tune.runs import RunSpec, compose_run, execute, run_dir_of
from adabench.tune.space import as_overrides, search_space


class StudyStopped(Exception):
    """A study's first trial failed with an error every trial would repeat (bad input)."""


@dataclass
class Progress:
    """The pace of this process on one study, for its progress line."""

    started: float
    trials: int = 0

    def eta_text(self, remaining: int) -> str:
        if not self.trials:
            return ""
        per = (time.monotonic() - self.started) / self.trials
        return f", {per:.0f} s/trial, ETA {per * remaining / 60:.0f} min"


def instantiate(spec: dict[str, Any], **extra: Any) -> Any:
    """An Optuna sampler or pruner from its ``_target_`` config."""
    from hydra.utils import instantiate as hydra_instantiate

    return hydra_instantiate({**spec, **extra})


def trial_overrides(plan: Plan, row: Row, params: dict[str, Any]) -> list[str]:
    """A trial's overrides: the common ones, the row, the trial seed, the drawn parameters."""
    prunes = plan.shared["pruner"]["_target_"] != "optuna.pruners.NopPruner"
    report = ["eval_every_n_epochs=1"] if prunes and row.trains else []
    seed = f"seed={plan.shared['trial_seed']}"
    return [*plan.overrides, f"loss={row.loss}", seed, *as_overrides(params), *report]


def tune_row(plan: Plan, row: Row, worker: int) -> optuna.Study:
    """Run ``row``'s study until it has its budget; the study."""
    name, folder = plan.study_name(row), plan.study_dir(row)
    storage = st.storage_of(folder, plan.storage)
    study = st.open_study(storage, name, plan.shared["direction"], folder)
    if abandoned := st.fail_abandoned(study):
        say(f"[adabench] {name}: trial(s) {abandoned} left running by a process that ended, failed")
    n = int(plan.shared["n_trials"])
    done = st.finished(study)
    if done >= n:
        return study
    seed = st.sampler_seed(study, int(plan.shared["sampler"].get("seed") or 0), worker)
    study.sampler = instantiate(plan.shared["sampler"], seed=seed)
    study.pruner = instantiate(plan.shared["pruner"])
    where = st.describe_storage(folder, plan.storage)
    say(f"[adabench] study {name}: {done}/{n} trials so far, sampler seed {seed}; storage {where}")
    space, progress = search_space(row.params), Progress(time.monotonic())
    while st.finished(study) < n:
        trial = study.ask(space)
        if not st.within_budget(study, trial.number, n):
            st.not_counted(study, trial._trial_id, "over the budget: other workers ran it")  # noqa: SLF001
            break
        run_trial(plan, row, study, trial)
        progress.trials += 1
        say(progress_line(study, name, n, progress))
    return study


def run_trial(plan: Plan, row: Row, study: optuna.Study, trial: optuna.Trial) -> None:
    """Run one trial and tell the study how it ended."""
    spec = RunSpec(
        tuple(trial_overrides(plan, row, trial.params)), plan.study_dir(row), plan.study_name(row)
    )
    run_dir = run_dir_of(spec, compose_run(spec.overrides))
    trial.set_user_attr(st.RUN_DIR, str(run_dir))
    try:
        _, value = execute(spec, pruning_hook(trial))
    except RunPruned as err:
        study.tell(trial, state=TrialState.PRUNED)
        say(f"[adabench] {plan.study_name(row)} trial #{trial.number}: {err}")
        return
    except FolderTaken as err:
        st.not_counted(study, trial._trial_id, f"its run folder was taken: {err}")  # noqa: SLF001
        return
    except (KeyboardInterrupt, SystemExit):
        st.not_counted(study, trial._trial_id, "interrupted")  # noqa: SLF001
        raise
    except Exception as err:  # noqa: BLE001 - a failed trial is recorded; the study goes on
        trial.set_user_attr("error", error_text(err))
        if repeats_in_every_trial(err, row, study):
            st.not_counted(study, trial._trial_id, f"stopped the study: {error_text(err)}")  # noqa: SLF001
            raise StudyStopped(error_text(err)) from err
        report_failure(err, f"{plan.study_name(row)} trial #{trial.number}", run_dir, True)
        study.tell(trial, state=TrialState.FAIL)
        return
    if math.isnan(value):  # no validation metric to tune on
        trial.set_user_attr("error", "no validation metric (protocol.validation=false?)")
        study.tell(trial, state=TrialState.FAIL)
    else:
        study.tell(trial, value)


def pruning_hook(trial: optuna.Trial) -> Callable[[int, dict[str, float]], None]:
    """Report each epoch's validation metric to the trial; stop the run when it is pruned."""
    from adabench.run import sweep_value

    def report(epoch: int, validation: dict[str, float]) -> None:
        value = sweep_value({"validation": validation})
        if math.isnan(value):
            return
        trial.report(value, epoch)
        if trial.should_prune():
            raise RunPruned(epoch, value)

    return report


def repeats_in_every_trial(err: Exception, row: Row, study: optuna.Study) -> bool:
    """Whether a trial's error would repeat in every trial: bad input no tuned key names.

    Only while no trial of the study has completed: after that a failure is the trial's own.
    """
    if any(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False)):
        return False
    return isinstance(err, ConfigError | DataError) and not any(k in str(err) for k in row.params)


def progress_line(study: optuna.Study, name: str, n: int, progress: Progress) -> str:
    """``study: trial i/N, best so far …, ETA …`` after each trial of this process."""
    done = st.finished(study)
    best = _best(study)
    best_text = f"best {best.value:.4f} (#{best.number})" if best else "none completed yet"
    return f"[adabench] {name}: trial {done}/{n}, {best_text}{progress.eta_text(n - done)}"


def _best(study: optuna.Study) -> Any:
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return None
    pick = max if study.direction == optuna.study.StudyDirection.MAXIMIZE else min
    return pick(complete, key=lambda t: t.value)


def study_line(study: optuna.Study, name: str) -> str:
    """A study's closing line: its trials by state and its best validation value."""
    trials = study.get_trials(deepcopy=False)
    complete = sum(t.state == TrialState.COMPLETE for t in trials)
    pruned = sum(t.state == TrialState.PRUNED for t in trials)
    failed = sum(st.counts(t) for t in trials if t.state == TrialState.FAIL)
    best = _best(study)
    best_text = f", best validation {best.value:.4f} (trial #{best.number})" if best else ""
    return (
        f"[adabench] study {name}: {st.finished(study)} trials ({complete} completed, "
        f"{pruned} pruned, {failed} failed){best_text}"
    )


def best_params(study: optuna.Study) -> dict[str, Any]:
    """The parameters of the study's best completed trial."""
    best = _best(study)
    if best is None:
        raise ConfigError(
            f"study {study.study_name} has no completed trial: nothing to re-run on test "
            "(see its runs' train.log)"
        )
    return dict(best.params)


def rerun_specs(plan: Plan, row: Row, params: dict[str, Any] | None) -> list[RunSpec]:
    """The row's runs on the fresh seeds: its best config (``params``), or its defaults."""
    kind = "test" if params is not None else "defaults"
    common = [*plan.overrides, f"loss={row.loss}", *as_overrides(params or {})]
    return [
        RunSpec((*common, f"seed={s}"), plan.work / kind / row.loss, f"{kind}-{plan.task}")
        for s in plan.shared["test_seeds"]
    ]


def run_all(specs: list[RunSpec]) -> int:
    """Run each spec (skipping those another process holds or finished); failures counted."""
    failed = 0
    for spec in specs:
        try:
            execute(spec)
        except FolderTaken:
            continue  # another worker runs it; the report reads its result
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as err:  # noqa: BLE001 - recorded in its metrics.json; the rest go on
            run_dir = run_dir_of(spec, compose_run(spec.overrides))
            report_failure(err, run_dir.name, run_dir, True)
            failed += 1
    return failed


def work(plan: Plan, worker: int = 0) -> dict[str, optuna.Study]:
    """One process's share: every study to its budget, then the re-runs; the studies."""
    studies = {}
    for row in plan.rows:
        studies[row.loss] = study = tune_row(plan, row, worker)
        say(study_line(study, plan.study_name(row)))
    specs = [s for row in plan.rows for s in rerun_specs(plan, row, best_params(studies[row.loss]))]
    if plan.defaults == "run":
        specs += [s for row in plan.rows for s in rerun_specs(plan, row, None)]
    run_all(specs)
    return studies
