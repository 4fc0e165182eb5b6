"""Launch paths beyond one process: joblib parallel sweeps, submitit (local), 2-process DDP."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from adabench.build import build_datamodule, build_module, load_saved_weights, scorer_factory
from adabench.metrics import detection_metrics

from . import wandb_log
from .conftest import ROOT, SMOKE, metrics_files, run_train

pytestmark = pytest.mark.slow


def test_joblib_parallel_sweep_splits_the_cores(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_train(
        [
            "-m",
            "hydra/launcher=parallel",
            "hydra.launcher.n_jobs=2",
            "loss=softmax,arcface",
            f"hydra.sweep.dir={sweep}",
            *SMOKE,
        ],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ms = metrics_files(sweep)
    assert [m["status"] for m in ms] == ["completed", "completed"]
    assert all(m["times"]["threads"] == max(1, (os.cpu_count() or 1) // 2) for m in ms)
    # the process policy reaches the joblib workers (set before torch loads, inherited)
    assert all(m["process"]["openmp"] == "GOMP_SPINCOUNT=1000" for m in ms)


def test_submitit_local_launcher(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_train(
        [
            "-m",
            "hydra/launcher=submitit_local",
            "hydra.launcher.timeout_min=10",
            "loss=softmax,adacos_fixed",
            f"hydra.sweep.dir={sweep}",
            *SMOKE,
        ],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ms = metrics_files(sweep)
    assert sorted(m["loss"] for m in ms) == ["adacos_fixed", "softmax"]
    assert all(m["status"] == "completed" for m in ms)
    assert all(m["process"]["openmp"] == "GOMP_SPINCOUNT=1000" for m in ms)


def test_ddp_two_cpu_processes_match_single_process_scoring(tmp_path):
    run = tmp_path / "run"
    overrides = [*SMOKE, "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "seed=5"]
    proc = run_train(
        [
            *overrides,
            "save_weights=true",
            "logger=wandb",
            "logger.mode=offline",
            f"hydra.run.dir={run}",
        ],
        tmp_path,
        env={"HOME": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    # one metrics.json, one W&B run, written by rank 0 only
    assert len(list(tmp_path.rglob("metrics.json"))) == 1
    (run_file,) = list(tmp_path.rglob("offline-run-*/run-*.wandb"))
    (m,) = metrics_files(run)
    assert m["status"] == "completed" and m["world_size"] == 2
    summary = wandb_log.summary(run_file, wait_for="test/auroc")
    assert summary["test/auroc"] == pytest.approx(m["metrics"]["auroc"])
    # single process, same data and the same (rank 0) weights: exactly the same scores
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    cfg.paths.output_dir = str(tmp_path / "single")
    dm = build_datamodule(cfg)
    dm.setup()
    module = load_saved_weights(build_module(cfg, dm), run / "model.pt")
    normal = module.embed(dm.eval_batches(dm.normal_images))
    test = module.embed(dm.eval_batches(dm.test_images))
    scores = scorer_factory(cfg)().fit(normal).score(test)
    saved = np.load(run / "scores.npz")
    np.testing.assert_array_equal(saved["score"], scores)  # float64, as the metrics read them
    assert detection_metrics(scores, dm.test_is_abnormal.numpy())["auroc"] == m["metrics"]["auroc"]
    sizes = json.loads((run / "metrics.json").read_text())["data"]["sizes"]
    assert sizes == dm.split.sizes() and sizes["normal_train"] <= 40  # the same split
