"""Detection metrics equal scikit-learn and brute-force float64 definitions for any score range.

The metrics once read scores outside [0, 1] as logits (torchmetrics' sigmoid), which collapsed
large L2 distances into ties: these tests use scores up to 1e6, negative scores, ties, and
shifted or scaled copies, where that bug changes every metric.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from adabench.errors import ConfigError
from adabench.metrics import detection_metrics, fpr_at_tpr

rng = np.random.default_rng(20)


def brute_auroc(s: np.ndarray, y: np.ndarray) -> float:
    """P(abnormal scores above normal) + ½ P(tie), over every pair, in float64."""
    pos, neg = s[y == 1][:, None], s[y == 0][None, :]
    return float(((pos > neg).sum() + 0.5 * (pos == neg).sum()) / (pos.size * neg.size))


def brute_ap(s: np.ndarray, y: np.ndarray) -> float:
    """Σ (R_t − R_{t−1}) P_t over the distinct thresholds t, highest first."""
    ap, last_recall = 0.0, 0.0
    for t in np.unique(s)[::-1]:
        flagged = s >= t
        tp = float((flagged & (y == 1)).sum())
        recall = tp / (y == 1).sum()
        ap += (recall - last_recall) * tp / flagged.sum()
        last_recall = recall
    return ap


def brute_fpr95(s: np.ndarray, y: np.ndarray) -> float:
    """The lowest FPR over thresholds that flag ≥ 95 % of the anomalies."""
    best = 1.0
    for t in np.unique(s):
        flagged = s >= t
        if (flagged & (y == 1)).sum() >= 0.95 * (y == 1).sum():
            best = min(best, float((flagged & (y == 0)).sum() / (y == 0).sum()))
    return best


def check(s: np.ndarray, y: np.ndarray) -> dict[str, float]:
    m = detection_metrics(s, y)
    assert m["auroc"] == pytest.approx(brute_auroc(s, y), abs=1e-12)
    assert m["auroc"] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert m["aupr"] == pytest.approx(brute_ap(s, y), abs=1e-12)
    assert m["aupr"] == pytest.approx(average_precision_score(y, s), abs=1e-12)
    fpr, tpr, _ = roc_curve(y, s)
    assert m["fpr_at_95tpr"] == pytest.approx(brute_fpr95(s, y), abs=1e-12)
    assert m["fpr_at_95tpr"] == pytest.approx(fpr[tpr >= 0.95].min(), abs=1e-12)
    return m


def labelled(n: int = 400, shift: float = 0.7) -> tuple[np.ndarray, np.ndarray]:
    y = rng.integers(0, 2, n)
    y[:2] = [0, 1]
    return rng.normal(size=n) + shift * y, y


@pytest.mark.parametrize("lo,hi", [(1e-6, 1e-3), (20, 80), (100, 1e4), (1e3, 1e6), (1e-6, 1e6)])
def test_scores_of_any_magnitude(lo, hi):
    """Log-uniform scores in [lo, hi]: large distances (≥ 37 was a sigmoid's 1.0) stay apart."""
    s, y = labelled()
    scores = np.exp(np.interp(s, (s.min(), s.max()), (np.log(lo), np.log(hi))))
    check(scores, y)


def test_the_reported_case_large_l2_distances():
    """Distances 26–72 (the CIFAR-10 stage-6 run): the old metrics gave ≈ 0.56 for ≈ 0.83."""
    y = np.repeat([0, 1], 500)
    s = 40 + 6 * rng.normal(size=1000) + 8 * y
    m = check(s, y)
    assert m["auroc"] > 0.8


def test_negative_scores_and_ties():
    s, y = labelled()
    check(-1e5 + s, y)
    check(np.round(s * 2) / 2 - 3, y)  # few distinct values: many ties across the classes
    check(np.full_like(s, -7.0), y)  # all tied: AUROC ½


@pytest.mark.parametrize("a,b", [(1.0, 1e6), (1e6, 0.0), (1e-6, 0.0), (3.0, -1e4), (1e4, 1e5)])
def test_shifting_or_scaling_changes_nothing(a, b):
    s, y = labelled()
    base = detection_metrics(s, y)
    assert detection_metrics(a * s + b, y) == pytest.approx(base, abs=1e-12)


def test_perfect_and_inverted_separation():
    y = np.array([0, 0, 1, 1])
    assert detection_metrics(np.array([1e5, 2e5, 8e5, 9e5]), y) == {
        "auroc": 1.0,
        "aupr": 1.0,
        "fpr_at_95tpr": 0.0,
    }
    inv = detection_metrics(np.array([9e5, 8e5, 2e5, 1e5]), y)
    assert inv["auroc"] == 0.0 and inv["fpr_at_95tpr"] == 1.0


def test_fpr_at_other_recall():
    s, y = labelled()
    fpr, tpr, _ = roc_curve(y, s)
    assert fpr_at_tpr(s, y, 0.5) == fpr[tpr >= 0.5].min()


def test_bad_inputs_are_named():
    with pytest.raises(ConfigError, match="both normal and abnormal"):
        detection_metrics(np.array([1.0, 2.0]), np.array([1, 1]))
    with pytest.raises(ConfigError, match="1 anomaly scores are NaN or infinite"):
        detection_metrics(np.array([1.0, np.nan, 3.0]), np.array([0, 1, 1]))
    with pytest.raises(ConfigError, match="3 scores for 2 labels"):
        detection_metrics(np.array([1.0, 2.0, 3.0]), np.array([0, 1]))


class ScaledKNN:
    """k-NN L2 distances times ``factor``: an unnormalised feature space's large distances."""

    def __init__(self, k: int = 3, factor: float = 1e4) -> None:
        from adabench.scoring import KNNScorer

        self.inner, self.factor, self.distance = KNNScorer(k, "l2"), factor, "l2"

    def fit(self, normal):
        self.inner.fit(normal)
        return self

    def score(self, query):
        return self.inner.score(query) * self.factor


def test_a_run_with_scores_above_100_reports_scikit_learns_auroc(tmp_path):
    """End to end: metrics.json equals scikit-learn on the run's own scores.npz (scores > 100)."""
    from .conftest import train_in_process

    pair = ("dataset.normal=9", "dataset.abnormal=3")  # not perfectly separable by pixels
    args = ("loss=baseline_pixels", "logger=none", *pair, "scorer.k=3", "scorer.distance=l2")
    plain = train_in_process(tmp_path / "plain", *args)
    scaled = train_in_process(
        tmp_path / "scaled",
        *args[:4],
        "~scorer",
        f"+scorer={{_target_: {__name__}.ScaledKNN, k: 3, factor: 1e4}}",
    )
    saved = np.load(tmp_path / "scaled" / "scores.npz")
    assert saved["score"].dtype == np.float64 and saved["score"].min() > 100
    y = saved["is_abnormal"]
    assert scaled["metrics"]["auroc"] == pytest.approx(roc_auc_score(y, saved["score"]), abs=1e-12)
    assert scaled["metrics"]["aupr"] == pytest.approx(
        average_precision_score(y, saved["score"]), abs=1e-12
    )
    for key in ("auroc", "aupr", "fpr_at_95tpr"):  # a monotone rescaling changes no metric
        assert scaled["metrics"][key] == pytest.approx(plain["metrics"][key], abs=1e-9)
    assert 0.5 < plain["metrics"]["auroc"] < 1.0  # a case where the ranking matters
