"""End to end through Hydra: single runs, multiruns, W&B offline, failures, determinism."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from adabench.baselines import BASELINES
from adabench.losses import build_head
from adabench.run import baseline_kind

from . import wandb_log
from .conftest import ROOT

pytestmark = pytest.mark.slow
SMOKE = ["experiment=smoke", "trainer.enable_progress_bar=false"]


def run_train(args: list[str], cwd: Path, exe: list[str] | None = None, env: dict | None = None):
    cmd = (exe or [sys.executable, str(ROOT / "train.py")]) + args
    full_env = {**os.environ, **(env or {})}
    full_env = {k: v for k, v in full_env.items() if v is not None}
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=full_env, timeout=600)


def folder_args(root: Path, normal: str, abnormal: str) -> list[str]:
    """Overrides for dataset=folder on a generated tree, taking every image."""
    counts = (
        "n_reference",
        "n_normal_train",
        "n_test_normal",
        "n_test_abnormal",
        "n_test_reference",
    )
    return [
        "dataset=folder",
        f"dataset.root={root}",
        f"dataset.normal={normal}",
        f"dataset.abnormal={abnormal}",
        *(f"dataset.{c}=null" for c in counts),
    ]


def metrics_files(root: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(root.rglob("metrics.json"))]


def test_every_config_group_option_composes():
    conf = ROOT / "conf"
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        for loss in sorted(p.stem for p in (conf / "loss").glob("*.yaml")):
            cfg = compose("train", overrides=[f"loss={loss}"], return_hydra_config=False)
            if cfg.loss.get("baseline"):  # no-training rows: no head, a known baseline kind
                assert baseline_kind(cfg) in BASELINES
                continue
            params = {k: v for k, v in cfg.loss.items() if k != "name"}
            head = build_head(cfg.loss.name, cfg.backbone.embedding_dim, 9, **params)
            assert head.num_classes == 9
        for group in (
            "dataset",
            "backbone",
            "scorer",
            "optimizer",
            "scheduler",
            "trainer",
            "logger",
            "experiment",
        ):
            for opt in sorted(p.stem for p in (conf / group).glob("*.yaml")):
                cfg = compose("train", overrides=[f"{group}={opt}"])
                assert cfg.seed == 0


def test_default_run_writes_metrics(tmp_path):
    """`python train.py` with nothing else: the embedded digits dataset, offline."""
    proc = run_train(
        [f"hydra.run.dir={tmp_path}/run", "trainer.enable_progress_bar=false"], tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (m,) = metrics_files(tmp_path / "run")
    assert m["status"] == "completed" and m["dataset"] == "digits"
    assert 0.0 <= m["metrics"]["auroc"] <= 1.0
    for key in ("aupr", "fpr_at_95tpr", "nn_accuracy"):
        assert key in m["metrics"]
    assert m["data"]["num_classes"] == 9 and m["versions"]["torch"]
    assert (tmp_path / "run" / "scores.npz").exists()
    assert "auroc=" in proc.stdout


def test_multirun_two_losses_two_seeds(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_train(
        ["-m", "loss=softmax,arcface_s16", "seed=0,1", f"hydra.sweep.dir={sweep}", *SMOKE],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = sorted(p.parent.name.rsplit("-", 1)[0] for p in sweep.glob("*/metrics.json"))
    assert runs == [
        "arcface-digits-s0",
        "arcface-digits-s1",
        "softmax-digits-s0",
        "softmax-digits-s1",
    ]
    ms = metrics_files(sweep)
    assert len(ms) == 4 and all(m["status"] == "completed" for m in ms)
    assert {(m["loss"], m["seed"]) for m in ms} == {
        ("softmax", 0),
        ("softmax", 1),
        ("arcface_s16", 0),  # results name the config option, so variants of a head stay apart
        ("arcface_s16", 1),
    }
    assert {m["config"]["loss"]["scale"] for m in ms if m["loss"] == "arcface_s16"} == {16.0}


def test_failed_job_is_recorded_and_sweep_goes_on(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_train(["-m", "scorer.k=100000,1", f"hydra.sweep.dir={sweep}", *SMOKE], tmp_path)
    assert proc.returncode != 0
    ms = {m["config"]["scorer"]["k"]: m for m in metrics_files(sweep)}
    assert ms[100000]["status"] == "failed"
    assert (
        "scorer.k=100000 must be between 1 and the number of normal training images (40)"
        in ms[100000]["error"]["message"]
    )
    assert ms[1]["status"] == "completed"


def test_same_seed_same_numbers(tmp_path):
    args = [*SMOKE, "trainer.deterministic=true", "seed=3"]
    for name in ("a", "b"):
        proc = run_train([*args, f"hydra.run.dir={tmp_path}/{name}"], tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = (metrics_files(tmp_path / n)[0] for n in ("a", "b"))
    assert a["metrics"]["auroc"] == b["metrics"]["auroc"]
    assert a["train_loss"] == b["train_loss"]
    assert a["config_hash"] == b["config_hash"]


def test_wandb_offline_run_holds_auroc_and_no_secret(tmp_path):
    secret = "0123456789abcdef0123456789abcdef01234567"
    proc = run_train(
        [*SMOKE, "logger=wandb", "logger.mode=auto", f"hydra.run.dir={tmp_path}/run"],
        tmp_path,
        env={"WANDB_API_KEY": None, "WANDB_MODE": None, "HOME": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "W&B: no API key found" in proc.stdout
    (run_file,) = (tmp_path / "run" / "wandb").glob("offline-run-*/run-*.wandb")
    summary = wandb_log.summary(run_file)
    metrics = metrics_files(tmp_path / "run")[0]["metrics"]
    assert summary["test/auroc"] == pytest.approx(metrics["auroc"])
    # a key in the environment never reaches files we write
    proc = run_train(
        [*SMOKE, "logger=wandb", "logger.mode=offline", f"hydra.run.dir={tmp_path}/run2"],
        tmp_path,
        env={"WANDB_API_KEY": secret},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for path in (tmp_path / "run2").rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


def test_folder_dataset_run(tmp_path, image_tree):
    proc = run_train(
        [*SMOKE, *folder_args(image_tree, "a", "b"), "scorer.k=3", f"hydra.run.dir={tmp_path}/run"],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (m,) = metrics_files(tmp_path / "run")
    assert m["data"]["sizes"]["normal_train"] == 12 and m["data"]["reference"] == ["c", "d"]


def test_console_script_from_another_directory(tmp_path):
    exe = shutil.which("adabench-train", path=str(Path(sys.executable).parent))
    assert exe, "adabench-train is installed with the package"
    proc = run_train([*SMOKE, f"hydra.run.dir={tmp_path}/run"], tmp_path, exe=[exe])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert metrics_files(tmp_path / "run")[0]["status"] == "completed"
