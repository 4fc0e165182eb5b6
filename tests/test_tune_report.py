"""Defaults vs tuned: ranking change, the paired comparison with the baseline, parameter moves."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from adabench.report.tuning import (
    Trial,
    against_baseline,
    medians,
    parameter_moves,
    pruning_bound,
    ranking_change,
    tuning_effect,
)

TASK = "digits: 0 vs 1"


def test_medians_ignore_failed_runs_and_variant_suffixes():
    rows = [
        {"loss": "arcface (loss.scale=16.0)", "status": "completed", "auroc": "0.8"},
        {"loss": "arcface", "status": "completed", "auroc": 0.6},
        {"loss": "arcface", "status": "failed", "auroc": 0.1},
        {"loss": "softmax", "status": "completed", "auroc": ""},
    ]
    assert medians(rows) == {"arcface": pytest.approx(0.7)}


def test_ranking_change_reports_both_orders_and_kendalls_tau():
    defaults = {"a": 0.9, "b": 0.8, "c": 0.7}
    same = ranking_change(defaults, {"a": 0.95, "b": 0.85, "c": 0.75}, ["a", "b", "c"])
    assert same.tuned == ("a", "b", "c") and not same.changed
    assert same.kendall_tau == pytest.approx(1.0)
    flipped = ranking_change(defaults, {"a": 0.7, "b": 0.8, "c": 0.9}, ["a", "b", "c"])
    assert flipped.tuned == ("c", "b", "a") and flipped.changed
    assert flipped.kendall_tau == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="needs ≥ 2 losses"):
        ranking_change(defaults, {"a": 0.9}, ["a", "b"])


def _run(tmp_path, loss: str, seed: int, shift: float) -> dict:
    """A run whose scores separate 100 abnormal from 100 normal images by ``shift``."""
    rng = np.random.default_rng(seed)
    is_abnormal = np.repeat([False, True], 100)
    score = rng.normal(size=200) + shift * is_abnormal
    run_dir = tmp_path / f"{loss}-s{seed}"
    run_dir.mkdir()
    np.savez(run_dir / "scores.npz", is_abnormal=is_abnormal, score=score)
    return {
        "task": TASK,
        "dataset": "digits",
        "loss": loss,
        "seed": seed,
        "status": "completed",
        "auroc": roc_auc_score(is_abnormal, score),
        "run_dir": str(run_dir),
    }


def test_against_baseline_finds_the_loss_that_beats_it_and_the_one_that_does_not(tmp_path):
    rows = []
    for seed in range(5):
        rows += [
            _run(tmp_path, "baseline_pixels", seed, 1.0),
            _run(tmp_path, "good", 100 + seed, 3.0),  # far better on every seed
            _run(tmp_path, "bad", 200 + seed, 0.2),  # far worse on every seed
        ]
    for r in rows:  # pair by the seed the runs share
        r["seed"] = r["seed"] % 100
    got = {c.loss: c for c in against_baseline(rows, ["good", "bad"], "baseline_pixels")}
    good, bad = got["good"], got["bad"]
    assert (good.seeds, good.wins, good.beats) == (5, 5, True)
    assert good.mean_diff > 0.2 and good.p_t_holm < 0.05
    # DeLong would need the same test images: these runs' scores differ image by image but
    # share the labels, so each seed is compared; the separation is large enough to be clear
    assert good.delong_better == 5 and good.delong_worse == 0
    assert (bad.wins, bad.beats) == (0, False) and bad.delong_worse == 5
    with pytest.raises(ValueError, match="baseline 'baseline_features' has no completed run"):
        against_baseline(rows, ["good"], "baseline_features")
    other_task = [{**rows[0], "task": "digits: 2 vs 3"}]
    with pytest.raises(ValueError, match="compares within one task"):
        against_baseline(rows + other_task, ["good"], "baseline_pixels")


def test_a_loss_better_on_only_some_seeds_does_not_beat_the_baseline(tmp_path):
    rows = []
    for seed in range(5):
        rows += [
            _run(tmp_path, "baseline_pixels", seed, 1.0),
            _run(tmp_path, "mixed", 100 + seed, 1.6 if seed % 2 else 0.4),
        ]
    for r in rows:
        r["seed"] = r["seed"] % 100
    (mixed,) = against_baseline(rows, ["mixed"], "baseline_pixels")
    assert 0 < mixed.wins < 5 and not mixed.beats


def test_parameter_moves_give_the_factor_for_numbers_and_the_change_for_choices():
    best = {"optimizer.lr": 0.0003, "scorer.distance": "cosine", "loss.margin": 0.3, "scorer.k": 5}
    defaults = {"optimizer.lr": 0.001, "scorer.distance": "l2", "loss.margin": 0.5, "scorer.k": 5}
    assert parameter_moves(best, defaults) == [
        "optimizer.lr: 0.001 → 0.0003 (×0.3)",
        "scorer.distance: l2 → cosine",
        "loss.margin: 0.5 → 0.3 (×0.6)",
        "scorer.k: 5 (unchanged)",
    ]


def test_the_pruning_bound_saves_only_the_later_epochs_of_trials_below_the_running_median():
    def trial(i: int, value: float, epochs: int = 4) -> Trial:
        return Trial(f"2026-01-01T00:00:{i:02d}", epochs, 40.0, 50.0, value)

    rising = [trial(i, 0.5 + i / 100) for i in range(10)]  # each beats the median before it
    assert pruning_bound(rising) == 0.0
    falling = [trial(i, 0.9 - i / 100) for i in range(10)]  # trials 5..9 fall below it
    assert pruning_bound(falling) == pytest.approx(5 * 40 * 3 / 4 / (10 * 50))
    assert pruning_bound(falling[::-1]) == pytest.approx(5 * 40 * 3 / 4 / (10 * 50))  # by start
    one_epoch = [trial(i, 0.9 - i / 100, epochs=1) for i in range(10)]  # nothing left to stop
    assert pruning_bound(one_epoch) == 0.0
    assert pruning_bound(falling, startup=8) == pytest.approx(2 * 30 / 500)
    with pytest.raises(ValueError, match="at least one"):
        pruning_bound([])


def _rows(loss: str, values: list[float]) -> list[dict]:
    return [
        {"loss": loss, "seed": s, "status": "completed", "auroc": v} for s, v in enumerate(values)
    ]


def test_tuning_effect_says_better_worse_equivalent_or_undecided_paired_by_seed():
    base, noise = [0.80, 0.82, 0.78, 0.81, 0.79], [0.05, -0.06, 0.04, -0.05, 0.03]
    defaults = _rows("up", base) + _rows("down", base) + _rows("same", base) + _rows("noisy", base)
    tuned = (
        _rows("up (loss.scale=80)", [v + 0.03 + 0.002 * i for i, v in enumerate(base)])
        + _rows("down", [v - 0.03 - 0.002 * i for i, v in enumerate(base)])
        + _rows("same", [v + 0.001 * (-1) ** i for i, v in enumerate(base)])
        + _rows("noisy", [v + d for v, d in zip(base, noise, strict=True)])
    )
    for row in tuned:
        row["seed"] = str(row["seed"])  # results.csv read back: seeds as text still pair
    effect = {e.loss: e for e in tuning_effect(defaults, tuned, ["up", "down", "same", "noisy"])}
    assert effect["up"].verdict == "better" and effect["up"].improved == 5
    assert effect["down"].verdict == "worse" and effect["down"].mean_diff == pytest.approx(-0.034)
    assert effect["same"].verdict == "equivalent" and effect["same"].seeds == 5
    assert effect["noisy"].verdict == "undecided"  # a large p-value alone is not "the same"
    d = np.array(noise)
    half = 2.131846786 * d.std(ddof=1) / np.sqrt(5)  # t(0.95, 4), by hand
    assert effect["noisy"].ci90 == pytest.approx((d.mean() - half, d.mean() + half))
    assert tuning_effect(defaults, tuned, ["absent"]) == []
