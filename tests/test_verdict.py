"""Cross-task statistics on constructed sweeps with known answers, and DeLong's test."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from adabench.files import write_json
from adabench.report import report
from adabench.report.delong import delong_test
from adabench.report.verdict import holm, min_wilcoxon_p, pairs_in_tasks, seeds_needed

from .conftest import ROOT

DECIDED_P = r"(0\.9[5-9]|1\.00)"  # a probability that decides a pair, as printed
PAIRS = [
    ("deer", "horse"),
    ("cat", "dog"),
    ("ship", "truck"),
    ("bird", "frog"),
    ("car", "plane"),
    ("dog", "cat"),
    ("horse", "deer"),
    ("frog", "bird"),
]


def write_run(root, task, loss, seed, auroc, config=None):
    normal, abnormal = task
    write_json(
        root
        / f"{loss}-{normal}-{abnormal}-s{seed}-{abs(hash(json.dumps(config))) % 999}"
        / "metrics.json",
        {
            "status": "completed",
            "loss": loss,
            "dataset": "cifar10",
            "backbone": "x",
            "seed": seed,
            "protocol": "anomaly",
            "data": {"normal": [normal], "abnormal": [abnormal]},
            "metrics": {"auroc": auroc},
            "config": config or {"loss": {"name": loss}, "seed": seed},
        },
    )


def make_suite(root, rows: dict, seeds=range(5), noise=0.004):
    rng = np.random.default_rng(1)
    for t, task in enumerate(PAIRS):
        base = 0.6 + 0.04 * t  # tasks from hard to easy
        for loss, shift in rows.items():
            for seed in seeds:
                write_run(root, task, loss, seed, base + shift + rng.normal(0, noise))
    return root


def test_equal_rows_are_equivalent_and_a_worse_row_is_worse(tmp_path):
    sweep = make_suite(tmp_path / "s", {"arcface": 0.0, "adacos_fixed": 0.0, "softmax": -0.05})
    out = report([sweep], plots=True, quiet=True)
    v = out["verdict"]
    assert len(v.tasks) == 8 and v.friedman_p < 0.01
    ranks = {k: x["mean_rank"] for k, x in v.losses.items()}
    assert ranks["softmax"] == 3.0
    pair = {(p["a"], p["b"]): p for p in v.pairs}
    same = pair[("adacos_fixed", "arcface")]
    assert same["p_equivalent"] > 0.95  # equal up to noise: equivalent within the ROPE
    worse = pair[("arcface", "softmax")]
    assert worse["p_a_better"] > 0.95 and worse["p_b_better"] < 0.01
    stats = json.loads((sweep / "stats.json").read_text())
    assert stats["metric"] == "auroc" and stats["rope"] == 0.01 and len(stats["tasks"]) == 8
    assert set(stats["losses"]["softmax"]) >= {"mean_rank", "mean", "iqm", "mean_ci"}
    assert {"a", "b", "n_tasks", "p_a_better", "p_equivalent", "p_b_better"} <= set(
        stats["pairs"][0]
    )
    summary = (sweep / "summary.md").read_text()
    verdict = summary[summary.index("## Verdict across tasks") :]
    assert re.search(
        rf"arcface is better than softmax \(P\(arcface better\) = {DECIDED_P}", verdict
    )
    assert "adacos_fixed and arcface are equivalent within ±0.01" in verdict
    assert "at a glance\n\n| task (median auroc of 5 runs) | adacos_fixed |" in summary
    assert re.search(rf"\| ≈ {DECIDED_P} \| > {DECIDED_P} \|", summary)  # the pair matrix
    assert (sweep / "cd_auroc.png").read_bytes()[:4] == b"\x89PNG"
    lo, hi = v.losses["softmax"]["mean_ci"]
    assert lo < v.losses["softmax"]["mean"] < hi < v.losses["arcface"]["mean_ci"][0]


def test_the_verdict_names_the_winner_first_with_its_probability(tmp_path):
    sweep = make_suite(tmp_path / "s", {"adacos": -0.05, "softmax": 0.0})  # b of the pair wins
    lines = report([sweep], plots=False, quiet=True)["verdict"].verdict
    assert any(
        re.match(rf"softmax is better than adacos \(P\(softmax better\) = {DECIDED_P}", x)
        for x in lines
    )
    assert not any("One run per task" in x for x in lines)
    one_seed = make_suite(tmp_path / "one", {"adacos": -0.05, "softmax": 0.0}, seeds=[0])
    lines = report([one_seed], plots=False, quiet=True)["verdict"].verdict
    assert lines[-1].startswith("One run per task: the CIs resample seeds within each task")


def test_a_wider_rope_turns_a_small_difference_into_equivalence(tmp_path):
    sweep = make_suite(tmp_path / "s", {"a": 0.0, "b": -0.02, "c": -0.1}, noise=0.001)
    narrow = {
        (p["a"], p["b"]): p for p in report([sweep], plots=False, quiet=True)["verdict"].pairs
    }
    wide = {
        (p["a"], p["b"]): p
        for p in report([sweep], plots=False, quiet=True, rope=0.05)["verdict"].pairs
    }
    assert narrow[("a", "b")]["p_a_better"] > 0.95 and wide[("a", "b")]["p_equivalent"] > 0.95


def test_tasks_are_kept_apart_and_other_configs_become_their_own_rows(tmp_path):
    sweep = tmp_path / "s"
    for seed in range(3):
        write_run(
            sweep, ("deer", "horse"), "arcface", seed, 0.8, {"loss": {"scale": 64}, "seed": seed}
        )
        write_run(
            sweep, ("deer", "horse"), "arcface", seed, 0.7, {"loss": {"scale": 16}, "seed": seed}
        )
        write_run(
            sweep, ("cat", "dog"), "arcface", seed, 0.6, {"loss": {"scale": 64}, "seed": seed}
        )
    out = report([sweep], plots=False, quiet=True)
    groups = {(s.dataset, s.loss): s.n for s in out["stats"]}
    assert groups == {
        ("cifar10: deer vs horse", "arcface (loss.scale=16)"): 3,
        ("cifar10: deer vs horse", "arcface (loss.scale=64)"): 3,
        ("cifar10: cat vs dog", "arcface"): 3,
    }
    pairs = out["pairs"]  # pairing is by seed within a task, never across tasks
    assert [(p.task, p.n) for p in pairs] == [("cifar10: deer vs horse", 3)]
    summary = (sweep / "summary.md").read_text()
    assert "runs named arcface differ in loss.scale" in summary
    assert "needs at least 5 tasks" in summary  # two tasks: no cross-task verdict


def test_a_single_task_sweep_says_a_verdict_needs_more_tasks(tmp_path):
    sweep = tmp_path / "s"
    for seed in range(5):
        for loss in ("a", "b"):
            write_run(sweep, ("deer", "horse"), loss, seed, 0.8 + 0.01 * seed)
    out = report([sweep], plots=False, quiet=True)
    assert out["verdict"].verdict[0].startswith("A cross-task verdict needs at least 5 tasks")
    assert math.isnan(out["verdict"].friedman_p)


def test_per_task_pairs_can_reach_significance_and_say_what_wilcoxon_needs(tmp_path):
    sweep = tmp_path / "s"
    for seed in range(5):  # b loses on every seed by about 0.05
        write_run(sweep, ("deer", "horse"), "a", seed, 0.8 + 0.001 * seed)
        write_run(sweep, ("deer", "horse"), "b", seed, 0.75 - 0.002 * seed)
    (pair,) = pairs_in_tasks(report([sweep], plots=False, quiet=True)["rows"])
    assert pair.mean_diff > 0.04 and pair.p_t_holm < 0.001  # the t-test can say "better"
    assert pair.min_p_wilcoxon == 2 / 32 and pair.p_wilcoxon == pytest.approx(0.0625)
    assert pair.seeds_for_05 == 6


def test_holm_and_the_seed_arithmetic():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.2, math.nan])[0] == 0.2 and math.isnan(holm([0.2, math.nan])[1])
    assert min_wilcoxon_p(5) == 0.0625 and min_wilcoxon_p(6) == 0.03125
    assert seeds_needed(1) == 6 and seeds_needed(28) == 11


def test_delong_matches_a_paired_bootstrap():
    rng = np.random.default_rng(3)
    y = np.r_[np.zeros(400), np.ones(300)].astype(int)
    shared = rng.normal(size=700)
    a = shared + 1.0 * y + rng.normal(0, 0.6, 700)  # two correlated scorers, a slightly better
    b = shared + 0.8 * y + rng.normal(0, 0.6, 700)
    res = delong_test(y, a * 1e4, b - 50)  # any score range
    assert res.auroc_a == pytest.approx(roc_auc_score(y, a)) and res.auroc_b == pytest.approx(
        roc_auc_score(y, b)
    )
    diffs = []
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    for _ in range(2000):  # resample images within each class, the same images for both scorers
        i = np.r_[rng.choice(neg, len(neg)), rng.choice(pos, len(pos))]
        diffs.append(roc_auc_score(y[i], a[i]) - roc_auc_score(y[i], b[i]))
    se_boot = float(np.std(diffs, ddof=1))
    assert res.se == pytest.approx(se_boot, rel=0.1)
    p_boot = 2 * norm.sf(abs(res.auroc_a - res.auroc_b) / se_boot)
    assert res.p_value == pytest.approx(p_boot, abs=0.02)
    same = delong_test(y, a, a)
    assert same.p_value == 1.0 and same.z == 0.0


@pytest.mark.parametrize("suite", ["suite_cifar10_pairs", "suite_fmnist_pairs"])
def test_task_suites_sweep_ten_distinct_pairs_with_the_baselines(suite):
    from .conftest import compose_config

    text = (ROOT / "conf" / "experiment" / f"{suite}.yaml").read_text()
    pairs = re.search(r"suite.pair: (.+)", text).group(1).split(",")
    losses = re.search(r"loss: (.+)", text.split("params:")[1]).group(1).split(",")
    assert len(set(pairs)) == 10 and {"baseline_pixels", "baseline_features"} <= set(losses)
    assert len(losses) == 8
    for pair in pairs:
        one = compose_config(f"experiment={suite}", f"suite.pair={pair}", smoke=False)
        normal, abnormal = one.dataset.normal, one.dataset.abnormal
        assert str(normal) != str(abnormal) and f"{normal}-{abnormal}" == pair


def test_a_bad_pair_is_named():
    from adabench.resolvers import pair_part

    assert pair_part("7-9", 1) == 9 and pair_part("deer-horse", 0) == "deer"
    with pytest.raises(ValueError, match="suite.pair must look like normal-abnormal"):
        pair_part("deer", 0)
