"""Equal-budget tuning through Hydra's Optuna sweeper: on validation, resumable, robust, shared."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import ROOT, SMOKE, compose_config, run_train

optuna = pytest.importorskip("optuna")
FAMILIES = sorted(p.stem for p in (ROOT / "conf" / "hparams_search").glob("*.yaml"))


def trials(study_dir: Path) -> list:
    storage = f"sqlite:///{study_dir / 'optuna.db'}"
    (summary,) = optuna.get_all_study_summaries(storage)
    return optuna.load_study(study_name=summary.study_name, storage=storage).trials


def validation_values(study_dir: Path) -> dict[str, float]:
    out = {}
    for path in study_dir.glob("*/metrics.json"):
        rec = json.loads(path.read_text())
        if rec["status"] == "completed":
            out[path.parent.name] = (rec["validation"]["auroc"], rec["metrics"]["auroc"])
    return out


def test_every_loss_family_gets_the_same_budget_sampler_and_common_space():
    seen = set()
    for name in (f for f in FAMILIES if not f.startswith("_") and f != "smoke"):
        # on a preset that sweeps seeds and losses: those lists are grids, not search dimensions
        cfg = compose_config(
            "experiment=cifar10_deer_horse_pretrained",
            f"hparams_search={name}",
            smoke=False,
            hydra=True,
        )
        sweeper = cfg.hydra.sweeper
        assert not {"seed", "loss", "suite.pair"} & set(sweeper.params), name
        seen.add((sweeper.n_trials, sweeper.sampler._target_, sweeper.sampler.seed))
        assert sweeper.direction == "maximize" and sweeper.max_failure_rate == 1.0
        common = {
            "optimizer.lr",
            "backbone.lr_scale",
            "optimizer.weight_decay",
            "trainer.max_epochs",
            "backbone.embedding_dim",
            "scorer.k",
            "scorer.distance",
        }
        assert common <= set(sweeper.params), name
    assert seen == {(25, "optuna.samplers.TPESampler", 0)}


@pytest.mark.slow
def test_a_smoke_study_optimises_validation_continues_and_survives_failures(tmp_path):
    study = tmp_path / "study"
    args = ["experiment=smoke", "hparams_search=smoke", f"hydra.sweep.dir={study}", *SMOKE[1:]]
    first = run_train(args, tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    result = yaml.safe_load((study / "optimization_results.yaml").read_text())
    values = validation_values(study)
    assert len(trials(study)) == 3 and len(values) == 3
    best_val = max(v for v, _ in values.values())
    assert result["best_value"] == best_val  # the objective is a trial's VALIDATION metric
    assert all(t != best_val for _, t in values.values() if _ != best_val)
    # the same command continues the study; with fewer normal images a trial that draws
    # k = 20 is refused (a NaN objective): recorded as failed, and the study goes on
    failing = [*args, "dataset.n_normal_train=10", "hydra.sweeper.n_trials=4"]
    again = run_train(failing, tmp_path)
    states = [t.state.name for t in trials(study)]
    assert len(states) == 7 and "FAIL" in states and states.count("COMPLETE") >= 4
    assert "completed" in again.stdout.strip().splitlines()[-1]


@pytest.mark.slow
def test_two_processes_share_one_study_without_losing_or_duplicating_a_trial(tmp_path):
    study = tmp_path / "study"
    args = [
        "experiment=smoke",
        "hparams_search=smoke",
        f"hydra.sweep.dir={study}",
        *SMOKE[1:],
        "hydra.sweeper.n_trials=2",
    ]
    study.mkdir()
    procs = []
    for worker in ("0", "1"):
        env = {**os.environ, "ADABENCH_TUNE_WORKER": worker}
        cmd = [sys.executable, str(ROOT / "train.py"), *args]
        out = subprocess.PIPE
        procs.append(subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=out, stderr=out))
    for p in procs:
        p.wait(timeout=300)
        assert p.returncode == 0, p.stderr.read()[-2000:]
    done = trials(study)
    assert sorted(t.number for t in done) == [0, 1, 2, 3]  # none lost, none counted twice
    assert all(t.state.name == "COMPLETE" for t in done)
    params = {json.dumps(t.params, sort_keys=True) for t in done}
    assert len(params) == 4  # the workers drew different trials
    assert len(validation_values(study)) == 4


@pytest.mark.slow
def test_the_tuning_protocol_tunes_reruns_the_best_on_test_and_reports(tmp_path):
    out, defaults = tmp_path / "out", tmp_path / "defaults.csv"
    defaults.write_text(  # a results.csv of the untuned rows, in the report's columns
        "loss,seed,status,auroc\narcface,0,completed,0.9\nsoftmax,0,completed,0.2\n"
        "baseline_pixels,0,completed,0.5\n"
    )
    cmd = [
        sys.executable,
        str(ROOT / "benchmarks" / "tune_protocol.py"),
        "none",
        "--experiment",
        "smoke",
        "--losses",
        "arcface",
        "softmax",
        "--trials",
        "3",
        "--seeds",
        "0",
        "1",
        "--work",
        str(tmp_path / "work"),
        "--out",
        str(out),
        "--parallel",
        "2",
        "--defaults",
        str(defaults),
    ]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for loss in ("arcface", "softmax"):
        assert len(trials(tmp_path / "work" / "studies" / loss)) == 3  # the same budget
        best = yaml.safe_load((out / "studies" / f"{loss}_optimization_results.yaml").read_text())
        assert set(best["best_params"]) >= {"optimizer.lr", "scorer.k"}
        for plot in ("history", "importances"):
            assert (out / "studies" / f"{loss}_{plot}.png").read_bytes()[:4] == b"\x89PNG"
    with open(out / "results.csv") as fh:
        rows = list(csv.DictReader(fh))
    names = {r["loss"].split(" (")[0] for r in rows}
    assert names == {"arcface", "softmax", "baseline_pixels", "baseline_features"}
    assert all(r["status"] == "completed" for r in rows) and len(rows) == 8  # 4 rows x 2 seeds
    text = (out / "README.md").read_text()
    assert "| arcface | 0.9000 |" in text and "| softmax | 0.2000 |" in text
    table = [line for line in text.splitlines() if line.startswith(("| arcface |", "| softmax |"))]
    assert all(line.rstrip(" |").endswith("%") for line in table[:2])  # pruning bound
    assert "- defaults: arcface > softmax" in text and "Kendall's tau" in text
    assert "## Did tuning help each loss?" in text  # paired with the defaults by seed
    assert "| arcface | " in text.split("best no-training baseline")[1]  # paired by seed
    moved = next(line for line in text.splitlines() if line.startswith("- **arcface**: "))
    assert "optimizer.lr: 0.001 → " in moved and "loss.scale: 64 → " in moved  # from defaults
    rerun = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert rerun.returncode == 0 and len(trials(tmp_path / "work" / "studies" / "arcface")) == 3


@pytest.mark.slow
def test_an_error_every_trial_would_repeat_stops_the_study_in_four_lines(tmp_path):
    study = tmp_path / "study"
    args = ["experiment=smoke", "hparams_search=smoke", f"hydra.sweep.dir={study}", *SMOKE[1:]]
    proc = run_train([*args, "dataset=folder"], tmp_path)  # dataset.root left unset
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert proc.returncode == 1 and len(lines) <= 4, lines
    error, stopped = [x for x in proc.stderr.splitlines() if x.startswith("[adabench]")]
    assert "dataset.root are required" in error and "stopped: no trial has completed" in stopped
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("0 trials completed, 1 failed; next: fix the error")
    assert [t.state.name for t in trials(study)] == ["FAIL"]  # not left RUNNING
    assert "Traceback" not in proc.stderr and "alembic" not in proc.stdout
