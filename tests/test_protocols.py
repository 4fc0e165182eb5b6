"""Protocols other than the seed one: one-vs-rest (and its report table)."""

from __future__ import annotations

import numpy as np
import pytest

from adabench.build import build_run
from adabench.data.splits import make_split
from adabench.errors import ConfigError
from adabench.report import collect_runs, one_vs_rest_table, report
from adabench.run import train

from .conftest import compose_config


def test_one_vs_rest_split_makes_every_other_class_abnormal():
    classes = [str(i) for i in range(5)]
    train_labels = np.repeat(np.arange(5), 10)
    test_labels = np.repeat(np.arange(5), 4)
    s = make_split(train_labels, test_labels, classes, normal=2, abnormal="rest")
    assert s.normal_classes == (2,) and s.abnormal_classes == (0, 1, 3, 4)
    assert s.train_classes == (2,) and len(s.reference_train) == 0
    assert set(train_labels[s.normal_train]) == {2} and len(s.normal_train) == 10
    assert len(s.test_normal) == 4 and len(s.test_abnormal) == 16  # the whole test set
    named = make_split(train_labels, test_labels, [*classes[:4], "rest"], normal=2, abnormal="rest")
    assert named.abnormal_classes == (4,)  # a class called "rest" is that class


def test_one_vs_rest_run_scores_the_whole_test_set(tmp_path):
    cfg = compose_config(
        "protocol=one_vs_rest",
        "loss=baseline_pixels",
        "dataset.normal=3",
        "logger=none",
        f"paths.output_dir={tmp_path}",
        smoke=False,
    )
    auroc = train(cfg)
    import json

    rec = json.loads((tmp_path / "metrics.json").read_text())
    assert rec["protocol"] == "one_vs_rest" and rec["metrics"]["auroc"] > 0.9
    assert auroc == rec["validation"]["auroc"] != rec["metrics"]["auroc"]  # what a sweeper sees
    assert rec["data"]["abnormal"] == [str(i) for i in range(10) if i != 3]
    sizes = rec["data"]["sizes"]
    assert sizes["reference_train"] == 0 and sizes["test_abnormal"] > 8 * sizes["test_normal"]
    assert "nn_accuracy" not in rec["metrics"]  # one class: nothing to tell apart


def test_a_classification_loss_under_one_vs_rest_is_refused_with_the_alternatives(tmp_path):
    cfg = compose_config(
        "protocol=one_vs_rest", "loss=arcface", f"paths.cache_dir={tmp_path}", smoke=False
    )
    with pytest.raises(
        ConfigError, match=r"loss=arcface learns to tell classes apart.*loss=baseline_features"
    ):
        build_run(cfg)


def test_the_report_tables_one_vs_rest_per_class_and_mean(tmp_path):
    from adabench.files import write_json

    values = {("a", "0"): [0.9, 0.8], ("a", "1"): [0.7], ("b", "0"): [0.6]}
    for (loss, normal), aurocs in values.items():
        for seed, v in enumerate(aurocs):
            write_json(
                tmp_path / f"{loss}-{normal}-{seed}" / "metrics.json",
                {
                    "status": "completed",
                    "loss": loss,
                    "dataset": "toy",
                    "protocol": "one_vs_rest",
                    "seed": seed,
                    "data": {"normal": [normal]},
                    "metrics": {"auroc": v},
                },
            )
    headers, rows = one_vs_rest_table(collect_runs([tmp_path]))
    assert headers == ["dataset", "loss", "0", "1", "mean"]
    assert rows == [
        ["toy (one-vs-rest)", "a", "0.8500", "0.7000", "0.7750"],
        ["toy (one-vs-rest)", "b", "0.6000", "–", "0.6000*"],
    ]
    report([tmp_path], tmp_path / "out", quiet=True, plots=False)
    md = (tmp_path / "out" / "summary.md").read_text()
    assert "## One-vs-rest" in md and "| toy (one-vs-rest) | a | 0.8500 | 0.7000 | 0.7750 |" in md


def test_classification_split_trains_and_tests_every_class():
    from adabench.data.protocols import Classification

    classes = [str(i) for i in range(4)]
    train_labels, test_labels = np.repeat(np.arange(4), 10), np.repeat(np.arange(4), 5)
    s = Classification(validation=False).draw(
        train_labels, test_labels, classes, {"n_reference": 20}
    )
    assert s.train_classes == (0, 1, 2, 3) and s.num_classes == 4
    assert len(s.reference_train) == 20 and set(train_labels[s.reference_train]) == {0, 1, 2, 3}
    assert len(s.test_reference) == 20 and len(s.test_normal) == len(s.test_abnormal) == 0


def test_an_unknown_protocol_names_the_valid_ones():
    with pytest.raises(Exception, match=r"(?s)protocol/clasification.*anomaly.*classification"):
        compose_config("protocol=clasification")


def test_classification_metrics_equal_an_independent_computation(tmp_path):
    import json

    import torch
    import torch.nn.functional as F
    from sklearn.neighbors import KNeighborsClassifier

    from adabench.build import build_datamodule, build_module, load_saved_weights

    cfg = compose_config(
        "protocol=classification",
        "loss=cosface",
        "trainer.max_epochs=3",
        "save_weights=true",
        "save_embeddings=true",
        "logger=none",
        "trainer.enable_progress_bar=false",
        f"paths.output_dir={tmp_path}",
    )
    returned = train(cfg)
    rec = json.loads((tmp_path / "metrics.json").read_text())
    m = rec["metrics"]
    assert rec["protocol"] == "classification" and returned == rec["validation"]["test_accuracy"]
    assert set(rec["validation"]) == {"test_accuracy", "test_loss", "knn_accuracy"}
    assert set(m) == {"train_accuracy", "test_accuracy", "test_loss", "knn_accuracy"}
    split = json.loads((tmp_path / "split.json").read_text())["parts"]
    assert {p["pool"] for p in split.values() if p["rows"]} == {"train", "test"}
    assert all(i.startswith("train:") for i in split["reference_train"]["ids"])
    assert all(i.startswith("test:") for i in split["test_reference"]["ids"])  # held out
    emb = np.load(tmp_path / "embeddings.npz")
    assert len(np.unique(emb["test_labels"])) == 10 == len(np.unique(emb["train_labels"]))
    knn = KNeighborsClassifier(n_neighbors=1, metric="cosine").fit(
        emb["train"], emb["train_labels"]
    )
    assert m["knn_accuracy"] == pytest.approx(knn.score(emb["test"], emb["test_labels"]))
    dm = build_datamodule(cfg)
    dm.setup()
    module = load_saved_weights(build_module(cfg, dm), tmp_path / "model.pt").eval()
    x, y = torch.from_numpy(emb["test"]), torch.from_numpy(emb["test_labels"])
    with torch.no_grad():
        accuracy = (module.head.logits(x).argmax(1) == y).float().mean().item()
        loss = F.cross_entropy(module.head.logits(x, y), y).item()
    assert m["test_accuracy"] == pytest.approx(accuracy)
    assert m["test_loss"] == pytest.approx(loss, rel=1e-5)


def test_a_no_training_row_under_classification_reports_knn_accuracy(tmp_path):
    cfg = compose_config(
        "protocol=classification",
        "loss=baseline_pixels",
        "logger=none",
        f"paths.output_dir={tmp_path}",
    )
    assert 0.5 < train(cfg) <= 1.0  # k-NN on pixels classifies digits well above chance (0.1)


def test_ntxent_trains_one_class_on_two_views_of_the_normal_images(tmp_path):
    import json

    import torch

    from adabench.build import build_run

    common = ["protocol=one_vs_rest", "loss=ntxent", "dataset.normal=3", "logger=none"]
    cfg = compose_config(*common, f"paths.cache_dir={tmp_path}", smoke=False)
    built = build_run(cfg)
    dm = built.dm
    assert built.cache_info is None and dm.views == dict(cfg.loss.augment)
    images, labels = next(iter(dm.train_dataloader()))
    assert set(labels.tolist()) == {0}  # normal images only, a whole batch of them
    assert len(labels) == min(dm.batch_size, len(dm.split.normal_train))

    class Training:
        training = True

    dm.trainer = Training()
    (first, second), same = dm.on_after_batch_transfer((images, labels), 0)
    assert first.shape == second.shape == images.shape and first.dtype == torch.uint8
    assert not torch.equal(first, second) and torch.equal(same, labels)
    cfg = compose_config(
        *common,
        "trainer.max_epochs=3",
        "trainer.enable_progress_bar=false",
        f"paths.output_dir={tmp_path / 'run'}",
        smoke=False,
    )
    train(cfg)
    rec = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert rec["metrics"]["auroc"] > 0.6
    assert rec["data"]["trained_on"] == "normal images"
    assert rec["data"]["augmentation"].startswith("two views: pad_crop=4, hflip=True")


def test_the_folder_classification_preset_runs_on_a_folder_without_normal_or_abnormal(
    tmp_path, image_tree
):
    """The face-folder write-up's preset on your own tree: no dataset.normal/abnormal needed."""
    import json

    cfg = compose_config(
        "experiment=folder_classification",
        f"dataset.root={image_tree}",
        "loss=pml_arcface_regularface",
        "backbone.pretrained=false",  # ImageNet weights need internet
        "dataset.image_size=32",
        "trainer.max_epochs=1",
        "logger=none",
        "trainer.enable_progress_bar=false",
        f"paths.output_dir={tmp_path}",
        smoke=False,
    )
    assert cfg.backbone.name == "tf_efficientnetv2_b0" and cfg.dataset.normal is None
    train(cfg)
    rec = json.loads((tmp_path / "metrics.json").read_text())
    assert rec["status"] == "completed" and rec["data"]["num_classes"] == 4
    assert set(rec["metrics"]) == {"train_accuracy", "test_accuracy", "test_loss", "knn_accuracy"}
