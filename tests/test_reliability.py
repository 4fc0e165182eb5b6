"""Bad input gets one clear error; failures are recorded; files are written atomically."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image

from adabench.backbone import create_model
from adabench.data.folder import load_image_folder
from adabench.errors import ConfigError, DataError
from adabench.files import atomic_write, write_json
from adabench.loggers import redact

from .conftest import (
    ROOT,
    SMOKE,
    compose_config,
    folder_args,
    metrics_files,
    run_train,
    write_image_tree,
)


def _run_in_process(tmp_path, *overrides):
    """``train.py`` without the subprocess: the same ``train(cfg)`` on a composed config."""
    from adabench.run import train

    cfg = compose_config(
        "trainer.enable_progress_bar=false",
        "logger=none",
        f"paths.output_dir={tmp_path / 'run'}",
        *overrides,
    )
    return train(cfg)


def test_unknown_timm_backbone_suggests_close_names():
    with pytest.raises(
        ConfigError, match=r"Unknown timm backbone 'resnet19'. Did you mean: .*resnet18"
    ):
        create_model("resnet19", in_chans=3)


def test_offline_pretrained_download_error_is_actionable(monkeypatch):
    import timm

    def offline(*args, **kwargs):
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setattr(timm.models._builder, "load_pretrained", offline)
    with pytest.raises(
        DataError, match=r"pretrained weights for 'resnet18'.*backbone.pretrained=false"
    ):
        create_model("resnet18", in_chans=3, pretrained=True)


def test_failed_download_says_no_internet(tmp_path, monkeypatch):
    import torchvision.datasets.mnist as tv_mnist

    from adabench.data.pools import load_pool
    from adabench.data.sources import Torchvision

    def offline(*args, **kwargs):
        raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")

    monkeypatch.setattr(tv_mnist, "download_and_extract_archive", offline)
    with pytest.raises(DataError, match=r"download failed \(no internet\?\).*dataset.root="):
        load_pool("train", Torchvision(28, 1, "MNIST", str(tmp_path), download=True))
    monkeypatch.setattr("torchvision.datasets.cifar.download_and_extract_archive", offline)
    with pytest.raises(DataError) as err:  # the offline user's ways out, all named
        load_pool("train", Torchvision(32, 3, "CIFAR10", str(tmp_path), download=True))
    text = str(err.value)
    for way in ("dataset.download=false", "dataset=folder dataset.root=DIR", "dataset=cifar10_jpg"):
        assert way in text, way


def test_secret_keys_are_redacted():
    cfg = {"logger": {"api_key": "abc", "project": "p"}, "x": [{"token": "t"}]}
    assert redact(cfg) == {"logger": {"api_key": "***", "project": "p"}, "x": [{"token": "***"}]}


# ----------------------------------------------------------------------------- image folders
def _corrupt_tree(tmp_path):
    root = write_image_tree(tmp_path / "imgs", n_train=6, n_test=4)
    (root / "train" / "a" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    good = (root / "train" / "b" / "000.png").read_bytes()
    (root / "train" / "b" / "truncated.png").write_bytes(good[: len(good) // 2])
    return root


def test_corrupt_and_truncated_images_error_lists_files(tmp_path):
    root = _corrupt_tree(tmp_path)
    with pytest.raises(DataError) as err:
        load_image_folder(root / "train", 16, 3)
    text = str(err.value)
    assert "2 unreadable image(s)" in text and "broken.png" in text and "truncated.png" in text
    assert "dataset.on_corrupt=skip" in text


def test_corrupt_images_skipped_and_counted_in_metrics(tmp_path):
    root = _corrupt_tree(tmp_path)
    pool = load_image_folder(root / "train", 16, 3, on_corrupt="skip")
    assert len(pool) == 24 and len(pool.skipped) == 2
    _run_in_process(tmp_path, *folder_args(root, "a", "b"), "dataset.on_corrupt=skip", "scorer.k=2")
    assert metrics_files(tmp_path / "run")[0]["data"]["skipped_files"] == 2


def test_bad_images_of_every_split_are_named_in_one_error(tmp_path):
    root = _corrupt_tree(tmp_path)
    (root / "test" / "a" / "bad test.png").write_bytes(b"not a png")
    with pytest.raises(DataError) as err:
        _run_in_process(tmp_path, *folder_args(root, "a", "b"), "scorer.k=2")
    text = str(err.value)
    assert text.startswith(f"3 unreadable image(s) under {root / 'train'} and {root / 'test'}")
    for name in ("broken.png", "truncated.png", "bad test.png"):
        assert name in text


def test_skipped_images_are_said_in_one_line_and_listed(tmp_path, capsys):
    root = _corrupt_tree(tmp_path)
    (root / "test" / "a" / "bad test.png").write_bytes(b"not a png")
    _run_in_process(tmp_path, *folder_args(root, "a", "b"), "dataset.on_corrupt=skip", "scorer.k=2")
    said = [x for x in capsys.readouterr().err.splitlines() if "skipped" in x]
    assert said == [
        "[adabench] 3 unreadable image(s) skipped (dataset.on_corrupt=skip): 2 in train, 1 in "
        "test; listed in the run's metrics.json (data.skipped)"
    ]
    listed = metrics_files(tmp_path / "run")[0]["data"]["skipped"]
    assert len(listed) == 3 and any("bad test.png" in x for x in listed)


def test_bad_on_corrupt_value(tmp_path):
    root = write_image_tree(tmp_path / "imgs", n_train=2, n_test=2)
    with pytest.raises(ConfigError, match=r"on_corrupt must be one of error, skip, got 'ignore'"):
        load_image_folder(root / "train", 16, 3, on_corrupt="ignore")


def test_odd_files_names_sizes_and_modes(tmp_path):
    root = tmp_path / "imgs" / "train"
    for cls in ("ok parts", "défaut"):
        (root / cls).mkdir(parents=True)
    Image.new("RGB", (4000, 3000), (250, 10, 10)).save(root / "ok parts" / "big photo.jpg")
    Image.new("L", (12, 12), 40).save(root / "ok parts" / "gray ü.png")
    Image.new("RGBA", (12, 12), (0, 0, 255, 0)).save(root / "défaut" / "été.png")
    Image.fromarray(np.full((12, 12), 40000, dtype=np.uint16)).save(root / "défaut" / "16bit.png")
    (root / "défaut" / "notes.txt").write_text("not an image")
    (root / "ok parts" / ".DS_Store").write_bytes(b"\x00\x01")
    pool = load_image_folder(root, 32, 3)
    assert pool.classes == ["défaut", "ok parts"] and pool.images.shape == (4, 3, 32, 32)
    big = pool.images[pool.labels == 1][0]
    assert big[0].float().mean() > 200 and big[1].float().mean() < 40


# ----------------------------------------------------------------------------- whole runs
@pytest.mark.parametrize(
    ("override", "error", "message"),
    [
        ("backbone.name=resnet19", ConfigError, "Unknown timm backbone 'resnet19'. Did you mean:"),
        (
            "dataset.normal=11",
            ConfigError,
            "class index 11 is out of range; the dataset has 10 classes",
        ),
        ("dataset.abnormal=1", ConfigError, "share class(es) ['1']"),
        (
            "dataset.reference=[7,2]",
            ConfigError,
            "reference overlaps normal/abnormal in class(es) ['7']",
        ),
        (
            "dataset.n_normal_train=5000",
            ConfigError,
            "n_normal_train=5000 is more than the 127 images available",
        ),
        (
            "scorer.k=41",
            ConfigError,
            "scorer.k=41 must be between 1 and the number of normal training images (32)",
        ),
        ("scorer.distance=manhattan", ConfigError, "scorer.distance must be one of cosine, l2"),
        (
            "backbone.embedding_dim=0",
            ConfigError,
            "embedding_dim must be a positive integer, got 0",
        ),
        (
            "loss=adacos_fixed dataset.reference=[2]",
            ConfigError,
            "needs at least 3 training classes, got num_classes=2",
        ),
        ("+loss.margn=0.3", ConfigError, "loss.margn is not a parameter of"),
    ],
)
def test_bad_input_is_named_before_training(tmp_path, override, error, message):
    from adabench.build import build_run

    cfg = compose_config(*override.split(), f"paths.cache_dir={tmp_path}")
    with pytest.raises(error) as err:
        build_run(cfg)
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("loss=arcfce", "Could not find 'loss/arcfce'"),
        ("dataset=cifar100", "Could not find 'dataset/cifar100'"),
    ],
)
def test_unknown_group_option_is_named_by_hydra(override, message):
    from hydra.errors import MissingConfigException

    with pytest.raises(MissingConfigException, match=message):
        compose_config(override)


@pytest.mark.slow
def test_bad_input_exits_nonzero_with_clear_error(tmp_path):
    """Through the real train.py: one error line and where the traceback is; exit code 1."""
    run = tmp_path / "run"
    proc = run_train([*SMOKE, "dataset.normal=11", f"hydra.run.dir={run}"], tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        "[adabench] error: ConfigError: dataset.normal: class index 11 is out of range; the "
        "dataset has 10 classes (0..9): 0='0', 1='1', 2='2', 3='3', 4='4', 5='5', 6='6', 7='7', "
        "8='8', 9='9'.",
        f"[adabench] arcface-digits-s0 failed; traceback in {run / 'train.log'} "
        "(or set ADABENCH_TRACEBACK=1)",
    ]
    assert proc.stdout == ""
    log = (run / "train.log").read_text()
    assert "Traceback (most recent call last)" in log and "class index 11" in log
    assert json.loads((run / "metrics.json").read_text())["status"] == "failed"


def test_diverged_run_is_recorded_as_failed(tmp_path):
    from adabench.errors import DivergedError

    with pytest.raises(DivergedError):
        _run_in_process(tmp_path, "loss=l2softmax", "loss.alpha=1e38")
    (m,) = metrics_files(tmp_path / "run")
    assert m["status"] == "failed" and m["error"]["type"] == "DivergedError"
    assert "NaN or inf" in m["error"]["message"]


@pytest.mark.slow
def test_sigterm_is_recorded_as_interrupted(tmp_path):
    cmd = [
        sys.executable,
        str(ROOT / "train.py"),
        *SMOKE,
        "trainer.max_epochs=200",
        f"hydra.run.dir={tmp_path}/run",
    ]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    result = tmp_path / "run" / "metrics.json"
    deadline = time.time() + 120
    while time.time() < deadline and not (result.exists() and (tmp_path / "run" / "csv").exists()):
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    assert proc.returncode != 0
    m = json.loads(result.read_text())
    assert m["status"] == "interrupted" and m["error"]["type"] == "RunInterrupted"
    assert m["error"]["message"] == "received signal SIGTERM"


def test_resume_skips_completed_run(tmp_path, capsys):
    first = _run_in_process(tmp_path)
    before = (tmp_path / "run" / "metrics.json").read_text()
    assert _run_in_process(tmp_path) == first
    assert "skipped (resume)" in capsys.readouterr().out
    assert (tmp_path / "run" / "metrics.json").read_text() == before
    _run_in_process(tmp_path, "seed=1")  # another config: runs again
    assert "skipped" not in capsys.readouterr().out
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["seed"] == 1


def test_saved_weights_load_with_weights_only(tmp_path):
    _run_in_process(tmp_path, "save_weights=true")
    state = torch.load(tmp_path / "run" / "model.pt", weights_only=True)
    assert any(k.startswith("head.") for k in state) and any(
        k.startswith("embedder.neck") for k in state
    )


# ----------------------------------------------------------------------------- atomic files
def test_atomic_write_keeps_old_file_on_crash(tmp_path):
    path = write_json(tmp_path / "metrics.json", {"status": "completed", "auroc": 0.9})

    def crash(tmp):
        tmp.write_text('{"status": "compl')
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, crash)
    assert json.loads(path.read_text())["auroc"] == 0.9
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_threads_per_job_splits_cores():
    from adabench.context import threads_per_job

    assert threads_per_job(2, cpus=16) == 8
    assert threads_per_job(3, cpus=16) == 5
    assert threads_per_job(4, cpus=2) == 1
    assert threads_per_job(1, cpus=2) == 2
