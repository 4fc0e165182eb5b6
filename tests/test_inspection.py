"""OK/NG inspection images: the MVTec layout, a reference pool from elsewhere, export, predict."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.metrics import roc_auc_score

from adabench.data.inspection import InspectionFolder, write_inspection_tree
from adabench.data.sources import build_source
from adabench.detector import Detector, choose_thresholds, export_run

from .conftest import compose_config, metrics_files

pytestmark = pytest.mark.xdist_group("inspection")  # one worker trains the shared run once

SMALL = [
    "dataset=inspection",
    "dataset.image_size=16",
    "dataset.n_reference=100",
    "backbone.embedding_dim=16",
    "trainer.max_epochs=1",
    "batch_size=32",
    "logger=none",
    "trainer.enable_progress_bar=false",
]


def tree(root: Path, val: int = 3) -> Path:
    return write_inspection_tree(
        root, n_good=30, n_test_good=10, n_test_defect=5, n_val_defect=val, size=16
    )


def train_inspection(run_dir: Path, root: Path, *overrides: str) -> dict:
    from adabench.run import train

    cfg = compose_config(
        *SMALL, f"dataset.root={root}", f"paths.output_dir={run_dir}", *overrides, smoke=False
    )
    train(cfg)
    (record,) = metrics_files(run_dir)
    return record


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One small run on a generated tree, with its weights and detector (shared: ~20 s)."""
    base = tmp_path_factory.mktemp("inspection")
    root = tree(base / "parts")
    run = base / "run"
    record = train_inspection(run, root, "save_weights=true", "save_detector=true")
    return root, run, record


def test_the_mvtec_layout_reads_good_images_defects_and_val(tmp_path):
    root = tree(tmp_path / "parts")
    Image.new("L", (16, 16)).save(root / "ground_truth" / "mask.png")  # masks: never read
    source = InspectionFolder(16, 3, str(root))
    train, test = source.load("train"), source.load("test")
    assert train.classes == test.classes == ["defect", "good"]
    assert (train.labels == 1).sum() == 30 and (train.labels == 0).sum() == 6  # val/ defects
    assert (test.labels == 1).sum() == 10 and (test.labels == 0).sum() == 10
    assert train.ids[0] == "train/good/000.png" and "val/scratch/000.png" in train.ids
    assert {i.split("/")[1] for i in test.ids} == {"good", "scratch", "spot"}
    assert not any("ground_truth" in i for i in train.ids + test.ids)
    layout = build_source(
        {
            "_target_": "adabench.data.sources.ImageFolder",
            "root": str(root),
            "layout": "mvtec",
            "image_size": 16,
            "channels": 3,
        }
    )
    assert isinstance(layout, InspectionFolder)  # dataset=folder dataset.layout=mvtec


def test_without_val_defects_the_validation_anomalies_are_synthetic(tmp_path):
    from adabench.build import build_datamodule

    root = tree(tmp_path / "parts", val=0)
    cfg = compose_config(*SMALL, f"dataset.root={root}", smoke=False)
    dm = build_datamodule(cfg)
    with pytest.warns(UserWarning, match="synthetic"):
        dm.setup("fit")
    assert dm.split.validation.design == "synthetic" and len(dm.split.validation.abnormal)


def test_an_outside_reference_pool_is_recorded_and_never_tested(trained):
    root, run, record = trained
    assert record["status"] == "completed" and record["data"]["reference_pool"] == "digits"
    assert all(c.startswith("digits:") for c in record["data"]["reference"])
    parts = json.loads((run / "split.json").read_text())["parts"]
    reference = parts["reference_train"]["ids"]
    assert len(reference) == 100 and all(i.startswith("reference:digits/") for i in reference)
    tested = set(parts["test_normal"]["ids"] + parts["test_abnormal"]["ids"])
    assert tested.isdisjoint(reference) and all(i.startswith("test/") for i in tested)
    assert set(parts["val_abnormal"]["ids"]) <= {
        f"val/{d}/{i:03d}.png" for d in ("scratch", "spot") for i in range(3)
    }


def predicted(detector: Path, paths: list[Path], out: Path) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        "-m",
        "adabench.cli",
        "predict",
        str(detector),
        *map(str, paths),
        "--out",
        str(out),
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def test_export_then_predict_reproduces_the_runs_scores_and_auroc(trained, tmp_path):
    root, run, record = trained
    proc = predicted(run / "detector", [root / "test"], tmp_path / "p.csv")
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {r["path"]: r for r in csv.DictReader((tmp_path / "p.csv").open())}
    parts = json.loads((run / "split.json").read_text())["parts"]
    order = parts["test_normal"]["ids"] + parts["test_abnormal"]["ids"]
    saved = np.load(run / "scores.npz")
    mine = np.array([float(rows[str(root / i)]["score"]) for i in order])
    np.testing.assert_allclose(mine, saved["score"], rtol=0, atol=1e-6)
    assert roc_auc_score(saved["is_abnormal"], mine) == pytest.approx(record["metrics"]["auroc"])
    first = rows[str(root / order[0])]
    assert first["nearest_normal"].startswith("train/good/") and "anomalous_at_fpr" in first


def test_the_exported_embedders_give_pytorchs_embeddings(trained):
    import onnxruntime

    from adabench.build import build_run, load_saved_weights

    _, run, record = trained
    built = build_run(compose_config(*SMALL, f"dataset.root={trained[0]}", smoke=False))
    load_saved_weights(built.module, run / "model.pt")
    embedder = built.embedder.eval()
    images = torch.randint(0, 256, (7, 3, 16, 16), dtype=torch.uint8)
    with torch.no_grad():
        want = embedder(images).numpy()
    detector = Detector.load(run / "detector")
    np.testing.assert_allclose(detector.embed(images), want, atol=1e-4, rtol=0)
    session = onnxruntime.InferenceSession(str(run / "detector" / "embedder.onnx"))
    got = session.run(None, {"images": images.numpy()})[0]
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
    checks = json.loads((run / "detector" / "detector.json").read_text())["checks"]
    assert checks["torchscript_max_abs_diff"] <= 1e-4 and checks["onnx_max_abs_diff"] <= 1e-4


def test_thresholds_come_from_validation_and_test_images_do_not_move_them(trained, tmp_path):
    import shutil

    root, run, _ = trained
    copy, run_copy = tmp_path / "parts", tmp_path / "run"
    shutil.copytree(root, copy)
    shutil.copytree(run, run_copy, ignore=shutil.ignore_patterns("detector"))
    record = json.loads((run_copy / "metrics.json").read_text())
    record["config"]["dataset"]["root"] = str(copy)  # the same run, on a copy of its data
    (run_copy / "metrics.json").write_text(json.dumps(record))
    before = json.loads((run / "detector" / "detector.json").read_text())["thresholds"]
    for i in range(5):  # more test images, some extreme: the thresholds must not move
        Image.new("RGB", (16, 16), (255, 0, 0) if i else (0, 0, 0)).save(
            copy / "test" / "scratch" / f"new{i}.png"
        )
    after = json.loads((export_run(run_copy) / "detector.json").read_text())
    assert after["thresholds"] == before
    (copy / "val" / "spot" / "000.png").unlink()  # a validation image gone: refused, not moved
    with pytest.raises(Exception, match="changed since"):
        export_run(run_copy)


@pytest.mark.parametrize("scale", [1e-6, 1.0, 1e6])
def test_thresholds_at_the_target_fpr_and_the_best_f1(scale):
    rng = np.random.default_rng(0)
    normal, abnormal = rng.normal(0, 1, 200) * scale, rng.normal(3, 1, 50) * scale
    scores = np.concatenate([normal, abnormal])
    labels = np.r_[np.zeros(200), np.ones(50)]
    t = choose_thresholds(scores, labels, target_fpr=0.05)
    at = t["at_fpr"]["threshold"]
    assert (normal >= at).mean() <= 0.05 < (normal >= np.nextafter(at, -np.inf)).mean() + 1e-12
    assert t["at_fpr"]["validation_tpr"] == (abnormal >= at).mean()
    f1s = []
    for c in np.unique(scores):  # brute force: no threshold has a higher F1
        tp, fp = (abnormal >= c).sum(), (normal >= c).sum()
        f1s.append(2 * tp / (2 * tp + fp + 50 - tp))
    assert t["best_f1"]["validation_f1"] == pytest.approx(max(f1s))
    few = choose_thresholds(np.array([0.1, 0.2, 0.3]), np.array([0, 0, 1]))
    assert few["at_fpr"]["threshold"] == np.nextafter(0.2, np.inf)  # just above every normal


def test_predict_lists_unreadable_files_and_says_so_in_its_exit_code(trained, tmp_path):
    root, run, _ = trained
    folder = tmp_path / "incoming"
    folder.mkdir()
    Image.open(root / "test" / "good" / "000.png").resize((40, 30)).convert("L").save(
        folder / "other size and mode.png"  # prepared as in training: resized, RGB
    )
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    (folder / "notes.txt").write_text("not an image")  # not an image suffix: not read
    proc = predicted(run / "detector", [folder, tmp_path / "missing.png"], tmp_path / "p.csv")
    assert proc.returncode == 1
    rows = list(csv.DictReader((tmp_path / "p.csv").open()))
    assert [Path(r["path"]).name for r in rows] == ["other size and mode.png"]
    err = proc.stderr
    assert "unreadable, skipped: " in err and "broken.png" in err and "missing.png" in err
    assert "1 image(s) scored" in proc.stdout and "2 unreadable" in proc.stdout


def test_export_refuses_a_run_without_weights(trained, tmp_path):
    from adabench.errors import DataError

    _, run, _ = trained
    copy = tmp_path / "run"
    copy.mkdir()
    (copy / "metrics.json").write_bytes((run / "metrics.json").read_bytes())
    with pytest.raises(DataError, match="save_weights=true"):
        export_run(copy)


def test_a_no_training_row_exports_and_predicts_its_own_scores(trained, tmp_path):
    root, _, _ = trained
    run = tmp_path / "pixels"
    train_inspection(run, root, "loss=baseline_pixels")
    detector = export_run(run)  # nothing trained: no weights needed
    proc = predicted(detector, [root / "test"], tmp_path / "p.csv")
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {r["path"]: float(r["score"]) for r in csv.DictReader((tmp_path / "p.csv").open())}
    parts = json.loads((run / "split.json").read_text())["parts"]
    order = parts["test_normal"]["ids"] + parts["test_abnormal"]["ids"]
    mine = np.array([rows[str(root / i)] for i in order])
    np.testing.assert_allclose(mine, np.load(run / "scores.npz")["score"], rtol=0, atol=1e-6)
