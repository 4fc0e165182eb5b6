"""DeLong's test for two correlated AUROCs on the same test images (DeLong et al. 1988).

The fast algorithm of Sun & Xu (2014, IEEE SPL 21(11)): the structural components of each
AUROC come from mid-ranks, their covariance gives the variance of the difference, and
``z = (AUC_a − AUC_b) / sd`` is compared with the standard normal. No maintained Python
library ships it (scikit-learn, scipy and statsmodels do not); tests check it against a
paired bootstrap of the same images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import norm, rankdata


@dataclass(frozen=True)
class DeLong:
    """The result: both AUROCs, the difference's standard error, z and the two-sided p."""

    auroc_a: float
    auroc_b: float
    se: float
    z: float
    p_value: float


def _components(scores: np.ndarray, positive: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    pos, neg = scores[positive], scores[~positive]
    m, n = len(pos), len(neg)
    whole = rankdata(scores)  # mid-ranks: ties count ½, as in the AUROC
    v10 = (whole[positive] - rankdata(pos)) / n  # per abnormal image: share of normals below
    v01 = 1.0 - (whole[~positive] - rankdata(neg)) / m  # per normal image: share of abnormals above
    auc = (whole[positive].sum() - m * (m + 1) / 2) / (m * n)
    return float(auc), v10, v01


def delong_test(is_abnormal: np.ndarray, scores_a: np.ndarray, scores_b: np.ndarray) -> DeLong:
    """Compare the AUROCs of two scorers on the same images (abnormal = positive).

    Raises:
        ValueError: the labels lack a class, or the score arrays differ in length.
    """
    positive = np.asarray(is_abnormal).astype(bool)
    a, b = np.asarray(scores_a, np.float64), np.asarray(scores_b, np.float64)
    if not (len(a) == len(b) == len(positive)):
        raise ValueError("DeLong's test needs both scorers' scores for the same images.")
    if positive.all() or not positive.any():
        raise ValueError("DeLong's test needs normal and abnormal images.")
    auc_a, v10_a, v01_a = _components(a, positive)
    auc_b, v10_b, v01_b = _components(b, positive)
    s10 = np.cov(np.vstack([v10_a, v10_b]))
    s01 = np.cov(np.vstack([v01_a, v01_b]))
    cov = s10 / positive.sum() + s01 / (~positive).sum()
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    diff = auc_a - auc_b
    if var <= 0:  # identical rankings: no evidence of a difference
        return DeLong(auc_a, auc_b, 0.0, 0.0, 1.0 if diff == 0 else 0.0)
    se = var**0.5
    z = diff / se
    return DeLong(auc_a, auc_b, se, float(z), float(2 * norm.sf(abs(z))))


def delong_against_baselines(
    rows: list[dict], chosen: dict[str, str | None], alpha: float = 0.05
) -> list[list[str]]:
    """Per task × loss, DeLong's test against the task's chosen baseline, seed by seed.

    Each table row: task, loss, baseline, seeds compared, seeds where the loss is significantly
    better / worse (two-sided p < ``alpha``), and the median p. Runs without ``scores.npz`` are
    skipped.
    """
    from pathlib import Path

    from adabench.files import SCORES_FILE

    runs: dict[tuple[str, str], dict] = {}
    for r in rows:
        path = Path(r["run_dir"]) / SCORES_FILE
        if r["status"] == "completed" and path.exists() and r.get("protocol") != "classification":
            runs.setdefault((r.get("task") or r["dataset"], str(r["loss"])), {})[r["seed"]] = path
    table = []
    for (task, loss), seeds in sorted(runs.items()):
        ref = chosen.get(task)
        base = runs.get((task, str(ref))) if ref else None
        if base is None or loss == ref:
            continue
        wins = losses = 0
        ps = []
        for seed in sorted(set(seeds) & set(base), key=str):
            with np.load(seeds[seed]) as a, np.load(base[seed]) as b:
                if not np.array_equal(a["is_abnormal"], b["is_abnormal"]):
                    continue  # not the same test images: nothing to pair
                res = delong_test(a["is_abnormal"], a["score"], b["score"])
            ps.append(res.p_value)
            wins += res.p_value < alpha and res.z > 0
            losses += res.p_value < alpha and res.z < 0
        if ps:
            table.append(
                [task, loss, str(ref), str(len(ps)), str(wins), str(losses), f"{np.median(ps):.3g}"]
            )
    return table
