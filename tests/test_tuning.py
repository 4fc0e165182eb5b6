"""adabench tune: every row on one budget and sampler, on validation, resumable, shared, pruned."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from adabench.errors import ConfigError
from adabench.tune import study as st
from adabench.tune.plan import BASELINES, DEFAULT_LOSSES, check_equal_terms, load_row, make_plan

from .conftest import ROOT

SMOKE_TUNE = ["experiment=smoke", "--trials", "3", "--test-seeds", "1", "2"]


def tune(args: list[str], cwd: Path, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "adabench.tune", *args]
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        cmd, cwd=cwd, capture_output=True, text=True, env=full_env, timeout=600, **kw
    )


def load(study_dir: Path, storage: str | None = None) -> optuna.Study:
    storage = storage or st.storage_of(study_dir)
    (name,) = optuna.get_all_study_names(storage)
    return optuna.load_study(study_name=name, storage=storage)


def runs(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*/metrics.json"))]


def test_every_row_gets_the_same_budget_sampler_and_seeds_the_no_training_rows_included():
    plan = make_plan(
        [*DEFAULT_LOSSES, *BASELINES], ["experiment=smoke"], [], work=Path("w"), out=Path("o")
    )
    assert [r.loss for r in plan.rows] == [*DEFAULT_LOSSES, *BASELINES]
    shared = {
        json.dumps({k: r.settings[k] for k in plan.shared}, sort_keys=True) for r in plan.rows
    }
    assert len(shared) == 1  # budget, sampler (and its seed), pruner, trial and test seeds
    assert plan.shared["n_trials"] == 25 and plan.shared["sampler"]["seed"] == 0
    assert plan.shared["sampler"]["_target_"] == "optuna.samplers.TPESampler"
    assert {"multivariate", "constant_liar", "n_startup_trials"} <= set(plan.shared["sampler"])
    spaces = {r.loss: set(r.params) for r in plan.rows}
    assert spaces["baseline_features"] == {
        "backbone.out_stage",
        "dataset.image_size",
        "scorer.k",
        "scorer.distance",
    }
    assert spaces["baseline_pixels"] == {"dataset.image_size", "scorer.k", "scorer.distance"}
    common = {"optimizer.lr", "backbone.lr_scale", "trainer.max_epochs", "scorer.k"}
    assert all(common <= spaces[x] for x in DEFAULT_LOSSES)
    assert {"loss.scale", "loss.margin"} <= spaces["arcface"]
    # a row's file that changes what rows share is refused, naming the key and the file
    odd = load_row("arcface", "arcface", ["hparams_search.n_trials=40"])
    with pytest.raises(ConfigError, match=r"arcface.yaml sets n_trials=40.*_budget.yaml"):
        check_equal_terms([plan.rows[0], odd])


def test_test_seeds_must_be_fresh_and_a_missing_space_is_named():
    with pytest.raises(ConfigError, match=r"test_seeds=\[0, 1\].*no trial used"):
        make_plan(
            ["arcface"],
            ["experiment=smoke"],
            ["hparams_search.test_seeds=[0,1]"],
            work=Path("w"),
            out=Path("o"),
        )
    with pytest.raises(ConfigError, match=r"no search space for loss=pml_triplet.*--space"):
        make_plan(["pml_triplet"], ["experiment=smoke"], [], work=Path("w"), out=Path("o"))


def test_search_spaces_parse_to_optuna_distributions():
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    from adabench.tune.space import as_overrides, search_space

    space = search_space(
        {
            "a": "tag(log, interval(0.0001, 0.01))",
            "b": "choice(64, 128)",
            "c": "int(interval(1, 4))",
            "d": "choice(cosine, l2)",
            "e": "interval(0.05, 0.8)",
        }
    )
    assert space["a"] == FloatDistribution(0.0001, 0.01, log=True)
    assert space["b"] == CategoricalDistribution((64, 128))
    assert space["c"] == IntDistribution(1, 4)
    assert space["d"] == CategoricalDistribution(("cosine", "l2"))
    assert space["e"] == FloatDistribution(0.05, 0.8)
    assert as_overrides({"a": 0.1 + 0.2, "d": "l2"}) == ["a=0.30000000000000004", "d=l2"]
    with pytest.raises(ConfigError, match="one value, not a range"):
        search_space({"k": "5"})


@pytest.mark.slow
def test_the_smoke_command_tunes_every_row_on_validation_reruns_on_fresh_seeds_and_reports(
    tmp_path,
):
    proc = tune(
        [*SMOKE_TUNE, "--losses", "arcface", "--work", "w", "--out", "report"], tmp_path
    )  # docs/tuning.md
    assert proc.returncode == 0, proc.stderr[-3000:]
    work, out = tmp_path / "w", tmp_path / "report"
    for row in ("arcface", *BASELINES):
        study = load(work / "studies" / row)
        assert st.finished(study) == 3  # the same budget for every row
        trials = runs(work / "studies" / row)
        assert {r["seed"] for r in trials} == {0}
        completed = [t.value for t in study.trials if t.state == TrialState.COMPLETE]
        done = [r for r in trials if r["status"] == "completed"]
        # the objective is each trial's VALIDATION metric, never its test one
        assert set(completed) <= {r["validation"]["auroc"] for r in done}
        assert study.best_value == max(r["validation"]["auroc"] for r in done)
        reruns = runs(work / "test" / row)
        assert sorted(r["seed"] for r in reruns) == [1, 2]  # fresh: disjoint from seed 0
        assert all(r["status"] == "completed" for r in reruns)
        best = yaml.safe_load((out / "studies" / f"{row}_best.yaml").read_text())
        assert best["best_value"] == study.best_value
        for r in reruns:  # the re-runs train the best trial's configuration
            assert all(
                str(_select(r["config"], k)) == str(v) for k, v in best["best_params"].items()
            )
    for plot in ("history", "importances"):
        assert (out / "studies" / f"arcface_{plot}.png").read_bytes()[:4] == b"\x89PNG"
    text = (out / "README.md").read_text()
    assert "| baseline_pixels (no training) |" in text and "Spearman" in text
    assert "## Did tuning help each row?" in text and "Kendall's tau" in text
    assert (out / "summary.md").exists() and (out / "results.csv").exists()
    lines = [x for x in proc.stdout.splitlines() if ": trial " in x]
    assert any("trial 3/3, best " in x and "ETA" in x for x in lines)  # a progress line
    # the same command again: every study is full, every run done; nothing new runs
    again = tune([*SMOKE_TUNE, "--losses", "arcface", "--work", "w", "--out", "report"], tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert st.finished(load(work / "studies" / "arcface")) == 3
    assert "auroc=" not in again.stdout  # no run trained again


def _select(config: dict, dotted: str):
    for part in dotted.split("."):
        config = config[part]
    return config


@pytest.mark.slow
def test_resuming_continues_a_study_and_a_failing_trial_does_not_stop_it(tmp_path):
    args = [
        "experiment=smoke",
        "--losses",
        "arcface",
        "--no-baselines",
        "--defaults",
        "none",
        "--work",
        "w",
        "--no-report",
    ]
    first = tune([*args, "--trials", "2"], tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    study_dir = tmp_path / "w" / "studies" / "arcface"
    before = [t.params for t in load(study_dir).trials]
    # with 10 normal images a trial that draws k = 20 fails; it is recorded and the study goes on
    more = tune([*args, "--trials", "6", "dataset.n_normal_train=10"], tmp_path)
    assert more.returncode == 0, more.stderr[-2000:]
    study = load(study_dir)
    assert [t.params for t in study.trials[:2]] == before  # continued, not restarted
    assert st.finished(study) == 6
    seeds = study.user_attrs["sampler_seeds"]
    assert seeds[0]["seed"] == 0 and seeds[1]["seed"] == 7919 * 2  # a resumed study draws anew
    states = [t.state for t in study.trials]
    if TrialState.FAIL in states:  # k = 20 drawn: the failure is the trial's own
        assert "FAILED" in more.stderr and "scorer.k" in more.stderr


@pytest.mark.slow
def test_an_error_every_trial_would_repeat_stops_the_study_in_three_lines(tmp_path):
    args = [
        "experiment=smoke",
        "dataset=folder",
        "--losses",
        "arcface",
        "--no-baselines",
        "--work",
        "w",
    ]  # dataset.root left unset
    proc = tune(args, tmp_path)
    lines = [x for x in (proc.stdout + proc.stderr).strip().splitlines() if x.strip()]
    assert proc.returncode == 1 and len(lines) <= 3, lines
    assert "dataset.root are required" in proc.stderr and "study stopped" in proc.stderr
    study = load(tmp_path / "w" / "studies" / "arcface")
    assert [t.state for t in study.trials] == [TrialState.FAIL]  # not left RUNNING
    assert st.finished(study) == 0  # and it spent no budget: fixed, the study starts afresh
    assert "Traceback" not in proc.stderr


def _two_workers(tmp_path: Path, extra: list[str]) -> optuna.Study:
    args = [
        "experiment=smoke",
        "--losses",
        "arcface",
        "--no-baselines",
        "--defaults",
        "none",
        "--trials",
        "4",
        "--work",
        "w",
        "--no-report",
        *extra,
    ]
    procs = []
    for worker in ("0", "1"):
        env = {**os.environ, "ADABENCH_TUNE_WORKER": worker}
        cmd = [sys.executable, "-m", "adabench.tune", *args]
        out = subprocess.PIPE
        procs.append(
            subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=out, stderr=out, text=True)
        )
    for p in procs:
        p.wait(timeout=600)
        assert p.returncode == 0, p.stderr.read()[-2000:]
    return procs


def _nothing_lost_or_duplicated(study: optuna.Study, study_dir: Path) -> None:
    counted = [t for t in study.trials if st.counts(t)]
    assert len(counted) == 4  # the budget counts per study, not per worker
    assert all(t.state == TrialState.COMPLETE for t in counted)
    assert len({json.dumps(t.params, sort_keys=True) for t in counted}) == 4  # none twice
    assert not [t for t in study.trials if t.state == TrialState.RUNNING]
    folders = {Path(t.user_attrs[st.RUN_DIR]).name for t in counted}
    on_disk = {r["config_hash"] for r in runs(study_dir) if r["status"] == "completed"}
    assert len(folders) == 4 and len(on_disk) == 4  # each trial's run, once


@pytest.mark.slow
def test_two_processes_on_one_journal_file_lose_and_duplicate_nothing(tmp_path):
    args = [
        "experiment=smoke",
        "--losses",
        "arcface",
        "--no-baselines",
        "--defaults",
        "none",
        "--trials",
        "4",
        "--work",
        "w",
        "--no-report",
        "--workers",
        "2",
    ]
    proc = tune(args, tmp_path)  # this process and one it starts, each on one core
    assert proc.returncode == 0, proc.stderr[-2000:]
    workers = {
        s["worker"]
        for s in load(tmp_path / "w" / "studies" / "arcface").user_attrs["sampler_seeds"]
    }
    assert workers <= {0, 1} and 0 in workers  # the second joins unless the first ran all 4 first
    study_dir = tmp_path / "w" / "studies" / "arcface"
    assert (study_dir / st.JOURNAL_FILE).exists()
    _nothing_lost_or_duplicated(load(study_dir), study_dir)


@pytest.mark.slow
def test_two_workers_on_postgresql_lose_and_duplicate_nothing(tmp_path, postgres_url):
    _two_workers(tmp_path, ["--storage", postgres_url])
    study_dir = tmp_path / "w" / "studies" / "arcface"
    assert not (study_dir / st.JOURNAL_FILE).exists()  # the study lives on the server
    _nothing_lost_or_duplicated(load(study_dir, postgres_url), study_dir)


@pytest.mark.slow
def test_a_hopeless_trial_is_pruned_after_its_first_report(tmp_path, monkeypatch):
    from optuna.distributions import FloatDistribution

    from adabench.tune.driver import run_trial

    monkeypatch.chdir(tmp_path)
    plan = make_plan(
        ["arcface"],
        ["experiment=smoke", "trainer.max_epochs=3"],
        ["hparams_search/pruner=median"],
        work=tmp_path / "w",
        out=tmp_path / "o",
    )
    row = plan.rows[0]
    study = st.open_study(st.storage_of(plan.study_dir(row)), "s", "maximize", plan.study_dir(row))
    study.pruner = optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0)
    for _ in range(5):  # five finished trials that validated perfectly after every epoch
        study.add_trial(
            optuna.trial.create_trial(
                params={"optimizer.lr": 0.001},
                distributions={"optimizer.lr": FloatDistribution(1e-4, 1e-2, log=True)},
                value=1.0,
                intermediate_values={1: 1.0, 2: 1.0},
            )
        )
    trial = study.ask({"optimizer.lr": FloatDistribution(1e-4, 1e-2, log=True)})
    run_trial(plan, row, study, trial)
    pruned = study.trials[-1]
    assert pruned.state == TrialState.PRUNED and list(pruned.intermediate_values) == [1]
    (record,) = runs(plan.study_dir(row))
    assert record["status"] == "pruned" and record["pruned_after_epoch"] == 1
    assert st.counts(pruned)  # a pruned trial spends the budget like any other


def test_the_committed_studies_open_on_todays_optuna_with_their_best():
    dirs = sorted((ROOT / "multirun").glob("*_tuned*/studies/*/"))
    assert len(dirs) >= 14
    for study_dir in dirs:
        study = load(study_dir)
        old = yaml.safe_load((study_dir / "optimization_results.yaml").read_text())
        assert study.best_value == old["best_value"], study_dir
        assert study.best_params == old["best_params"], study_dir
        if (study_dir / "optimization_results.yaml").exists() and not study_dir.name.startswith(
            "baseline"
        ):
            assert st.finished(study) >= 25


def test_an_old_sqlite_study_is_moved_into_a_journal_with_every_trial(tmp_path):
    db = tmp_path / "optuna.db"
    old = optuna.create_study(storage=f"sqlite:///{db}", study_name="s", direction="maximize")
    old.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=4)
    old.set_user_attr("sampler_seeds", [{"seed": 0}])
    values = [t.value for t in old.trials]
    del old
    study = load(tmp_path)  # storage_of finds optuna.db and no journal: adopts it
    assert [t.value for t in study.trials] == values and study.user_attrs["sampler_seeds"]
    assert (tmp_path / st.JOURNAL_FILE).exists() and (
        tmp_path / "optuna.db.before-journal"
    ).exists()


def test_abandoned_running_trials_fail_without_spending_the_budget(tmp_path):
    from adabench.record import FolderClaim

    study = st.open_study(st.storage_of(tmp_path), "s", "maximize", tmp_path)
    live, dead = study.ask(), study.ask()
    (tmp_path / "live").mkdir()
    live.set_user_attr(st.RUN_DIR, str(tmp_path / "live"))
    dead.set_user_attr(st.RUN_DIR, str(tmp_path / "dead"))
    with FolderClaim(tmp_path / "live"):
        assert st.fail_abandoned(study, min_age_s=0) == [1]  # the held folder's trial lives
    states = [t.state for t in study.trials]
    assert states == [TrialState.RUNNING, TrialState.FAIL] and st.finished(study) == 0
    assert st.within_budget(study, 0, 1) and not st.within_budget(study, 2, 1)


@pytest.mark.slow
def test_wandb_groups_each_studys_trials_and_the_reruns(tmp_path, monkeypatch):
    from . import wandb_log

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    args = [
        "experiment=smoke",
        "logger=wandb",
        "logger.mode=offline",
        "--losses",
        "arcface",
        "--no-baselines",
        "--defaults",
        "none",
        "--trials",
        "1",
        "--test-seeds",
        "1",
        "--work",
        "w",
        "--no-report",
    ]
    proc = tune(args, tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (trial,) = (tmp_path / "w" / "studies" / "arcface").glob("*/wandb/offline-run-*/run-*.wandb")
    (rerun,) = (tmp_path / "w" / "test" / "arcface").glob("*/wandb/offline-run-*/run-*.wandb")
    assert wandb_log.group(trial) == "arcface-digits"  # the study
    assert wandb_log.group(rerun) == "test-digits"
