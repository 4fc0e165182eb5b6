"""Validation parts come from the training pool only, and never hold a test image or (but for
declared few-shot validation) an image of the test's abnormal class."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from adabench.data.protocols import Anomaly, Classification, OneVsRest
from adabench.data.splits import SplitCounts, make_split
from adabench.data.validation import (
    FewShotAbnormal,
    HeldOutReference,
    HeldOutShare,
    SyntheticAnomalies,
    cutpaste,
)
from adabench.scoring import KNNScorer

from .conftest import folder_args, train_in_process, write_image_tree

CLASSES = [f"c{i}" for i in range(10)]
TRAIN = np.repeat(np.arange(10), 500)  # a CIFAR-10-like pool, smaller
TEST = np.repeat(np.arange(10), 100)
SEED_COUNTS = {  # the seed protocol's counts (cifar10_deer_horse), scaled to the pool
    "normal": "c4",
    "abnormal": "c7",
    "n_reference": 800,
    "n_normal_train": 100,
    "n_test_normal": 100,
    "n_test_abnormal": 100,
    "n_test_reference": 100,
}
DESIGNS = {
    "held_out_reference": HeldOutReference(n_normal=50, n_abnormal=60),
    "synthetic": SyntheticAnomalies(n_normal=50, n_abnormal=60),
    "few_shot": FewShotAbnormal(n_normal=50, n_abnormal=20),
}


def _check_disjoint(split, few_shot: bool) -> None:
    val = split.validation
    rows = np.concatenate([val.normal, val.abnormal, val.labelled])
    trained = np.concatenate([split.reference_train, split.normal_train])
    assert len(rows) and len(np.intersect1d(rows, trained)) == 0  # never trained on
    assert rows.max() < len(TRAIN)  # train-pool rows: the test pool is never drawn from
    assert set(TRAIN[val.normal]) <= set(split.normal_classes)
    abnormal_seen = set(TRAIN[rows]) & set(split.abnormal_classes)
    assert bool(abnormal_seen) == few_shot  # only few-shot validation sees the abnormal class
    assert not set(TRAIN[split.train_indices()]) & set(val.held_out_classes)


@pytest.mark.parametrize("design", sorted(DESIGNS))
@pytest.mark.parametrize("seed", [0, 3])
def test_anomaly_validation_parts_are_disjoint_from_training_and_test(design, seed):
    split = Anomaly(design=DESIGNS[design]).draw(TRAIN, TEST, CLASSES, SEED_COUNTS, seed)
    _check_disjoint(split, few_shot=design == "few_shot")
    assert split.validation.few_shot == (design == "few_shot")


@pytest.mark.parametrize("design", ["synthetic", "few_shot"])
def test_one_vs_rest_validation_parts_are_disjoint(design):
    counts = {"normal": "c2", "abnormal": "rest", "n_normal_train": 400}
    split = OneVsRest(design=DESIGNS[design]).draw(TRAIN, TEST, CLASSES, counts, 1)
    _check_disjoint(split, few_shot=design == "few_shot")


def test_classification_validation_is_a_held_out_share_of_the_training_images():
    split = Classification(design=HeldOutShare(share=0.1)).draw(
        TRAIN, TEST, CLASSES, {"n_reference": 1000}, 2
    )
    held = split.validation.labelled
    assert len(held) == 100 and not np.intersect1d(held, split.reference_train).size
    assert len(split.reference_train) == 900 and held.max() < len(TRAIN)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_validation_off_draws_exactly_the_earlier_split(seed):
    """protocol.validation=false: the seed presets' splits of adabench <= 0.1 (make_split)."""
    counts = SplitCounts(**{k: v for k, v in SEED_COUNTS.items() if k.startswith("n_")})
    before = make_split(TRAIN, TEST, CLASSES, "c4", "c7", None, counts, seed)
    now = Anomaly(validation=False).draw(TRAIN, TEST, CLASSES, SEED_COUNTS, seed)
    assert now.validation is None and now.train_classes == before.train_classes
    for part in ("reference_train", "normal_train", "test_normal", "test_abnormal"):
        np.testing.assert_array_equal(getattr(now, part), getattr(before, part))
    # with spare normal images, synthetic and few-shot validation leave the training parts alone
    for design in ("synthetic", "few_shot"):
        on = Anomaly(design=DESIGNS[design]).draw(TRAIN, TEST, CLASSES, SEED_COUNTS, seed)
        np.testing.assert_array_equal(on.normal_train, before.normal_train)
        np.testing.assert_array_equal(on.test_abnormal, before.test_abnormal)


def test_cutpaste_moves_a_patch_and_is_reproducible():
    import torch

    images = torch.randint(0, 255, (6, 3, 32, 32), dtype=torch.uint8)
    a, b = cutpaste(images, 5), cutpaste(images, 5)
    assert torch.equal(a, b) and not torch.equal(a, images)
    changed = (a != images).flatten(1).any(1)
    assert changed.sum() >= 5  # each image altered (a patch onto itself can rarely match)


@pytest.mark.slow
def test_a_folder_run_records_clean_validation_and_logs_val_columns(tmp_path):
    """Done when of the protocol issue: split.json, metrics.json and csv/metrics.csv."""
    root = write_image_tree(
        tmp_path / "imgs", classes=("a", "b", "c", "d", "e"), n_train=40, n_test=8
    )
    run = tmp_path / "run"
    m = train_in_process(
        run,
        *folder_args(root, "a", "b"),
        "validation=held_out_reference",
        "protocol.design.n_normal=8",
        "protocol.design.n_abnormal=8",
        "eval_every_n_epochs=1",
        "trainer.max_epochs=2",
        "scorer.k=3",
    )
    split = json.loads((run / "split.json").read_text())
    parts = split["parts"]
    for part in ("val_normal", "val_abnormal"):  # from the training pool, never the test's
        assert parts[part]["pool"] == "train" and parts[part]["ids"]
        assert not [i for i in parts[part]["ids"] if i.startswith("b/")]  # the abnormal class
    trained = set(parts["reference_train"]["ids"]) | set(parts["normal_train"]["ids"])
    assert not trained & (set(parts["val_normal"]["ids"]) | set(parts["val_abnormal"]["ids"]))
    held = split["validation"]["held_out_classes"]
    assert split["validation"]["design"] == "held_out_reference" and len(held) == 1
    assert held[0] not in m["data"]["reference"] and not split["validation"]["few_shot"]
    assert set(m["validation"]) == {"auroc", "aupr", "fpr_at_95tpr"}
    assert m["protocol_info"]["validation"] == "held_out_reference"
    with open(run / "csv" / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    val = [r for r in rows if r.get("val/auroc")]
    assert len(val) == 2  # after epoch 1, and the final validation
    assert float(val[-1]["val/auroc"]) == pytest.approx(m["validation"]["auroc"])
    assert m["history"][0]["epoch"] == 1 and "auroc" in m["history"][0]


def test_the_value_a_sweeper_gets_is_the_validation_metric(tmp_path):
    from adabench.run import train

    from .conftest import compose_config

    cfg = compose_config("logger=none", f"paths.output_dir={tmp_path}")
    returned = train(cfg)
    rec = json.loads((tmp_path / "metrics.json").read_text())
    assert returned == rec["validation"]["auroc"]
    assert returned != rec["metrics"]["auroc"]  # fails if the test metric is returned
    off = compose_config(
        "logger=none", "protocol.validation=false", f"paths.output_dir={tmp_path / 'off'}"
    )
    assert np.isnan(train(off))  # nothing to tune on: never the test metric instead


class CountingKNN(KNNScorer):
    """k-NN that counts how often it is fitted (one FAISS index per evaluation is enough)."""

    fits = 0

    def _fit(self, normal):
        CountingKNN.fits += 1
        super()._fit(normal)


def test_validation_and_test_share_one_fitted_scorer(tmp_path):
    CountingKNN.fits = 0
    m = train_in_process(
        tmp_path / "run",
        "loss=baseline_pixels",
        "logger=none",
        "~scorer",
        f"+scorer={{_target_: {__name__}.CountingKNN, k: 3, distance: l2}}",
    )
    assert m["validation"] and m["metrics"]["auroc"] is not None
    assert CountingKNN.fits == 1


def test_a_dataset_too_small_for_validation_runs_without_it():
    labels = np.repeat(np.arange(3), 2)  # two normal training images: none can be held out
    with pytest.warns(UserWarning, match="No validation parts: only"):
        split = Anomaly(design=SyntheticAnomalies()).draw(
            labels, labels, ["a", "b", "c"], {"normal": "a", "abnormal": "b"}, 0
        )
    assert split.validation is None and len(split.normal_train) == 2
