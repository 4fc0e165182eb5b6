"""`adabench report` on a constructed sweep folder with known values."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import wilcoxon

from adabench.files import write_json
from adabench.metrics import detection_metrics
from adabench.report import bootstrap_median_ci, collect_runs, main, paired_tests, report, summarize

from . import wandb_log
from .conftest import SMOKE, run_train

AUROC = {
    "softmax": [0.80, 0.82, 0.79, 0.85, 0.81],
    "arcface": [0.86, 0.84, 0.88, 0.83, 0.90],
    "cosface": [0.80, 0.83, 0.78, 0.86, 0.80],
}


DIVERGED = (  # a reason longer than a table cell, whose fix is at its end
    "Training diverged: the loss became NaN at epoch 3 of 10 (lr 0.003, batch 128, 9 classes);"
    " lower the learning rate, e.g. optimizer.lr=0.0003, or set trainer.gradient_clip_val=1.0"
)


def scores_with_auroc(auc: float, n: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """n normal + n abnormal scores whose AUROC is exactly ``auc`` (a multiple of 1/n²)."""
    pairs = round(auc * n * n)  # abnormal image i is above c_i normal ones, Σ c_i = pairs
    above = np.full(n, pairs // n) + (np.arange(n) < pairs % n)
    score = 1e3 * np.r_[np.arange(n), above - 0.5]  # large: the metrics must not read logits
    return score, np.r_[np.zeros(n), np.ones(n)].astype(np.int8)


def make_sweep(root: Path) -> Path:
    job = 0
    for loss, values in AUROC.items():
        for seed, auc in enumerate(values):
            run = root / f"{job}-{loss}-digits-s{seed}"
            score, y = scores_with_auroc(auc)
            run.mkdir(parents=True)
            np.savez(run / "scores.npz", score=score, is_abnormal=y)
            write_json(
                run / "metrics.json",
                {
                    "status": "completed",
                    "loss": loss,
                    "dataset": "digits",
                    "backbone": "resnet18",
                    "seed": seed,
                    "config_hash": f"h{job}",
                    "metrics": {**detection_metrics(score, y), "nn_accuracy": 0.9},
                    "times": {
                        "setup_s": 1.0,
                        "train_s": 10.0 + seed,
                        "embed_s": 0.5,
                        "score_s": 0.1,
                        "total_s": 12.0,
                    },
                },
            )
            job += 1
    write_json(
        root / f"{job}-sphereface-digits-s0" / "metrics.json",
        {
            "status": "failed",
            "loss": "sphereface",
            "dataset": "digits",
            "seed": 0,
            "error": {"type": "DivergedError", "message": DIVERGED},
        },
    )
    write_json(
        root / f"{job + 1}-adacos_fixed-digits-s0" / "metrics.json",
        {
            "status": "running",
            "loss": "adacos_fixed",
            "dataset": "digits",
            "seed": 0,
        },
    )
    return root


def test_constructed_scores_have_the_stated_auroc():
    for auc in (0.5, 0.79, 0.8, 0.9, 1.0):
        assert detection_metrics(*scores_with_auroc(auc))["auroc"] == auc


def test_report_recomputes_metrics_from_scores_and_fix_repairs_metrics_json(tmp_path, capsys):
    """A metrics.json whose AUROC disagrees with its scores.npz (the logit bug) is flagged,
    reported with the recomputed value, and rewritten by --fix (old value kept)."""
    sweep = make_sweep(tmp_path / "sweep")
    run = sweep / "0-softmax-digits-s0"
    record = json.loads((run / "metrics.json").read_text())
    right = dict(record["metrics"])
    record["metrics"].update(auroc=0.5565, aupr=0.3)  # what the sigmoid made of large distances
    write_json(run / "metrics.json", record)

    out = report([sweep], plots=False, quiet=True)
    (row,) = [r for r in out["rows"] if r["run_dir"].endswith("0-softmax-digits-s0")]
    assert row["auroc"] == right["auroc"] and row["aupr"] == right["aupr"]
    flagged = {(c.metric, c.recorded) for c in out["corrections"]}
    assert flagged == {("auroc", 0.5565), ("aupr", 0.3)}
    summary = (sweep / "summary.md").read_text()
    assert "0-softmax-digits-s0: auroc 0.5565 -> 0.8000" in summary
    assert json.loads((run / "metrics.json").read_text())["metrics"]["auroc"] == 0.5565  # no --fix

    assert main([str(sweep), "--no-plots", "--fix"]) == 0
    fixed = json.loads((run / "metrics.json").read_text())
    assert fixed["metrics"]["auroc"] == right["auroc"]
    assert fixed["audit"]["previous"] == {"auroc": 0.5565, "aupr": 0.3}
    assert report([sweep], plots=False, quiet=True)["corrections"] == []  # repaired for good


def test_statistics_match_numpy_and_scipy(tmp_path):
    rows = collect_runs([make_sweep(tmp_path / "sweep")])
    assert len(rows) == 17
    assert {r["status"] for r in rows} == {"completed", "failed", "interrupted"}
    stats = {s.loss: s for s in summarize(rows)}
    for loss, values in AUROC.items():
        s = stats[loss]
        assert s.n == 5
        assert s.median == pytest.approx(np.median(values))
        assert s.mean == pytest.approx(np.mean(values))
        assert s.std == pytest.approx(np.std(values, ddof=1))
        assert s.iqr == pytest.approx(np.subtract(*np.percentile(values, [75, 25])))
        assert min(values) <= s.ci_low <= s.median <= s.ci_high <= max(values)
        assert s.median_train_s == 12.0
    tests = {t.loss: t for t in paired_tests(rows, "softmax")}
    diff = np.subtract(AUROC["arcface"], AUROC["softmax"])
    assert tests["arcface"].p_value == pytest.approx(wilcoxon(diff).pvalue)
    assert tests["arcface"].median_diff == pytest.approx(np.median(diff))
    assert tests["arcface"].win_rate == 0.8 and tests["arcface"].n_pairs == 5
    diff_c = np.subtract(AUROC["cosface"], AUROC["softmax"])
    assert tests["cosface"].win_rate == pytest.approx(np.mean(diff_c > 0))
    assert "softmax" not in tests


def test_bootstrap_ci_is_reproducible_and_narrows():
    x = np.random.default_rng(1).normal(0.8, 0.05, 40)
    assert bootstrap_median_ci(x) == bootstrap_median_ci(x)
    lo, hi = bootstrap_median_ci(x)
    lo_small, hi_small = bootstrap_median_ci(x[:5])
    assert hi - lo < hi_small - lo_small
    assert bootstrap_median_ci([0.7]) == (0.7, 0.7)


def test_report_writes_csv_markdown_and_plots(tmp_path, capsys):
    sweep = make_sweep(tmp_path / "sweep")
    out = tmp_path / "out"
    result = report([sweep], out)
    with open(out / "results.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 17 and {"auroc", "train_s", "seed", "status", "error"} <= set(rows[0])
    md = (out / "summary.md").read_text()
    assert "arcface vs softmax" in md and "95% CI of median" in md
    assert "Training diverged" in md and "interrupted" in md  # failures listed, never dropped
    assert DIVERGED in md  # whole, never cut before its fix
    assert sorted(result["plots"]) == ["box_digits_auroc.png", "roc_digits.png"]
    for png in result["plots"]:
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    printed = capsys.readouterr().out
    assert "arcface" in printed and "runs not completed (failed, interrupted or still" in printed


def test_cli_exit_codes(tmp_path):
    sweep = make_sweep(tmp_path / "sweep")
    assert main([str(sweep), "--no-plots"]) == 0
    assert main([str(sweep), "--no-plots", "--strict"]) == 1
    with pytest.raises(SystemExit):
        main([str(tmp_path / "missing")])
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "adabench.report",
            str(sweep),
            "--no-plots",
            "--out",
            str(tmp_path / "o2"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "o2" / "summary.md").exists()


def test_report_to_wandb_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    sweep = make_sweep(tmp_path / "sweep")
    result = report([sweep], tmp_path / "out", wandb=True, quiet=True)
    (run_file,) = (tmp_path / "out" / "wandb").glob("offline-run-*/run-*.wandb")
    logged = wandb_log.summary(run_file, wait_for="report/failures/nrows")
    rows = {"summary": len(result["stats"]), "paired": len(result["tests"]), "failures": 2}
    for key, n in rows.items():
        assert logged[f"report/{key}/_type"] == "table-file"
        assert logged[f"report/{key}/nrows"] == n
    table = json.loads((run_file.parent / "files" / logged["report/summary/path"]).read_text())
    assert table["columns"][:2] == ["task", "loss"]
    assert {r[1]: r[3] for r in table["data"]}["arcface"] == f"{np.median(AUROC['arcface']):.4f}"
    plots = {Path(p).stem for p in result["plots"]}
    assert plots and all(logged[f"report/{p}/_type"] == "image-file" for p in plots)


def _job(sweep: Path, run_name: str) -> Path:
    (path,) = sweep.glob(f"{run_name}-*/metrics.json")
    return path


@pytest.mark.slow
def test_interrupted_sweep_reruns_only_what_is_missing(tmp_path):
    sweep = tmp_path / "sweep"
    first = run_train(["-m", "loss=softmax,arcface", f"hydra.sweep.dir={sweep}", *SMOKE], tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    done = _job(sweep, "softmax-digits-s0")
    before = done.read_text()
    killed = _job(sweep, "arcface-digits-s0")  # killed mid-run: left "running"
    write_json(killed, {**json.loads(killed.read_text()), "status": "running"})
    # the sweep again, with one more value: only the killed and the new job run
    args = ["-m", "loss=softmax,arcface,cosface", f"hydra.sweep.dir={sweep}", *SMOKE]
    again = run_train(args, tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stdout.count("skipped (resume)") == 1
    assert "softmax-digits-s0: already completed" in again.stdout
    assert done.read_text() == before
    statuses = [json.loads(p.read_text())["status"] for p in sorted(sweep.glob("*/metrics.json"))]
    assert statuses == ["completed"] * 3
    (kept,) = sweep.glob("arcface-*/superseded/*-running/metrics.json")  # the killed attempt
    assert json.loads(kept.read_text())["status"] == "running"
    assert len(collect_runs([sweep])) == 3  # the report counts current results only


BASELINES = {"baseline_pixels": [0.84, 0.85, 0.83, 0.86, 0.84], "baseline_features": [0.82] * 5}


def add_baselines(root: Path) -> Path:
    for loss, values in BASELINES.items():
        for seed, auc in enumerate(values):
            write_json(
                root / f"b-{loss}-digits-s{seed}" / "metrics.json",
                {
                    "status": "completed",
                    "loss": loss,
                    "baseline": loss.removeprefix("baseline_"),
                    "dataset": "digits",
                    "backbone": "resnet18",
                    "seed": seed,
                    "metrics": {"auroc": auc, "fpr_at_95tpr": 1 - auc},
                    "times": {"train_s": 0.0, "total_s": 1.0},
                },
            )
    return root


def test_losses_are_paired_with_the_best_no_training_baseline(tmp_path):
    sweep = add_baselines(make_sweep(tmp_path / "sweep"))
    rows = collect_runs([sweep])
    tests = {t.loss: t for t in paired_tests(rows)}  # auto: the best baseline, pixels here
    assert {t.baseline for t in tests.values()} == {"baseline_pixels"}
    diff = np.subtract(AUROC["arcface"], BASELINES["baseline_pixels"])
    assert tests["arcface"].median_diff == pytest.approx(np.median(diff))
    assert tests["arcface"].p_value == pytest.approx(wilcoxon(diff).pvalue)
    assert "baseline_pixels" not in tests and "baseline_features" in tests
    # lower is better for FPR: the difference is signed so that > 0 still favours the loss
    fpr = {t.loss: t for t in paired_tests(rows, metric="fpr_at_95tpr")}
    assert fpr["arcface"].median_diff == pytest.approx(np.median(diff))
    out = tmp_path / "out"
    report([sweep], out, quiet=True)
    md = (out / "summary.md").read_text()
    assert "| digits | baseline_pixels (no training) | 5 | 0.8400 |" in md
    assert "digits: every row is paired with baseline_pixels (the best no-training baseline)." in md
    # softmax (median 0.81) and cosface (0.80) fall below the pixel baseline (0.84), arcface not
    line = next(x for x in md.splitlines() if "below baseline_pixels" in x)
    assert "softmax (0.8100)" in line and "cosface (0.8000)" in line and "arcface" not in line
    assert "every trained loss's median beats baseline_features (0.8200)" not in md
    assert (
        "**below baseline_features** (median 0.8200, no training): cosface (0.8000), softmax" in md
    )


def test_report_explains_a_missing_comparison_row(tmp_path, capsys):
    sweep = make_sweep(tmp_path / "sweep")
    for f in sweep.glob("*softmax*/metrics.json"):
        f.unlink()
    out = tmp_path / "out"
    result = report([sweep], out)
    assert result["tests"] == []
    console = " ".join(capsys.readouterr().out.split())  # the console says why, too
    assert "no no-training baseline and no softmax run to pair with, so no paired tests" in console
    md = (out / "summary.md").read_text()
    assert "no no-training baseline and no softmax run to pair with, so no paired tests" in md
    assert "add loss=baseline_pixels,baseline_features to the sweep" in md
    assert "| dataset | comparison |" not in md  # no empty table, only the sentence
    report([sweep], out, baseline="cosface", quiet=True)
    md = (out / "summary.md").read_text()
    assert "arcface vs cosface" in md and "(chosen with --baseline)" in md
    for f in sweep.glob("*/metrics.json"):  # a sweep of one row: nothing to pair it with
        if "cosface" not in f.parent.name:
            f.unlink()
    report([sweep], out, baseline="cosface", quiet=True)
    md = (out / "summary.md").read_text()
    assert "digits: only cosface ran, so there is nothing to pair with it." in md


def test_a_classification_sweep_is_reported_by_test_accuracy_and_says_what_is_left_out(tmp_path):
    root = tmp_path / "sweep"
    accuracy = {"softmax": [0.990, 0.992, 0.991], "adacos_fixed": [0.994, 0.993, 0.995]}
    for loss, values in accuracy.items():
        for seed, acc in enumerate(values):
            metrics = {"train_accuracy": 0.999, "test_accuracy": acc, "knn_accuracy": acc - 0.001}
            write_json(
                root / f"{loss}-mnist-s{seed}" / "metrics.json",
                {"status": "completed", "loss": loss, "dataset": "mnist", "seed": seed,
                 "protocol": "classification", "metrics": metrics},
            )  # fmt: skip
    for seed in range(3):  # a no-training row has no head: k-NN accuracy only
        write_json(
            root / f"baseline_pixels-mnist-s{seed}" / "metrics.json",
            {"status": "completed", "loss": "baseline_pixels", "dataset": "mnist", "seed": seed,
             "protocol": "classification", "baseline": "pixels",
             "metrics": {"knn_accuracy": 0.9723}},
        )  # fmt: skip
    result = report([root], tmp_path / "out", quiet=True, plots=False)
    assert result["metric"] == "test_accuracy"
    assert {s.loss: s.median for s in result["stats"]} == pytest.approx(
        {loss: np.median(v) for loss, v in accuracy.items()}
    )
    md = (tmp_path / "out" / "summary.md").read_text()
    assert "--metric auto chose test_accuracy: no run reports auroc." in md
    assert "baseline_pixels has no test_accuracy (it reports knn_accuracy)" in md
    assert "--metric knn_accuracy compares it with the others." in md
    assert "add loss=baseline_pixels" not in md  # it ran: no advice to add it
    assert "every loss is paired with softmax (no no-training row with this metric)" in md
    by_knn = report([root], tmp_path / "out", metric="knn_accuracy", quiet=True, plots=False)
    assert {s.loss for s in by_knn["stats"]} == {"softmax", "adacos_fixed", "baseline_pixels"}
    with pytest.raises(ValueError, match="metric must be auto or one of auroc"):
        report([root], tmp_path / "out", metric="accuracy")


def test_plots_stay_in_the_metrics_range_and_name_the_run_drawn(tmp_path, monkeypatch):
    """AUROCs at 1.0 give no y-axis above 1; with 4 seeds the ROC legend names the lower-median
    run (its seed and AUROC), the rule plots.median_run documents."""
    from adabench.report import plots

    figures = []
    monkeypatch.setattr(plots, "_save_figure", lambda fig, path: figures.append(fig) or path.name)
    rows = []
    for loss, values in {
        "arcface": [1.0, 0.998, 1.0, 0.996],
        "softmax": [0.8, 0.86, 0.82, 0.84],
    }.items():
        for seed, auc in enumerate(values):
            run = tmp_path / f"{loss}-{seed}"
            run.mkdir()
            score, y = scores_with_auroc(auc)
            np.savez(run / "scores.npz", score=score, is_abnormal=y)
            rows.append(
                {
                    "run_dir": str(run),
                    "status": "completed",
                    "loss": loss,
                    "dataset": "d",
                    "seed": seed,
                    "baseline": "",
                    "auroc": auc,
                }
            )
    plots.plot_boxes(rows, tmp_path, "auroc")
    plots.plot_roc(rows, tmp_path, "auroc")
    box, roc = figures
    assert box.axes[0].get_ylim()[1] <= 1.0
    legend = [t.get_text() for t in roc.axes[0].get_legend().get_texts()]
    assert "softmax: seed 2, AUROC 0.820" in legend  # 0.80 0.82 | 0.84 0.86: the lower median
    assert "arcface: seed 1, AUROC 0.998" in legend


def test_report_help_reads_as_text_and_explains_every_option(capsys):
    from adabench.report import main

    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert "``" not in text
    options = text[text.index("options:") :].splitlines()[1:]
    for option in ("--out", "--baseline", "--metric", "--rope", "--no-plots", "--wandb", "--fix"):
        (line,) = [x for x in options if x.strip().startswith(option)]
        explained = line.split(None, 2)[2:] if not line.strip().startswith("--metric") else ["."]
        assert explained and explained[0].strip(), option


def test_a_studys_rows_get_short_names_and_keep_their_parameters():
    from adabench.report.stats import summarize
    from adabench.report.tasks import label_variants

    configs = [
        {"optimizer": {"lr": 0.0012520653814999472}, "loss": {"scale": 28.645225810361822}},
        {"optimizer": {"lr": 0.00013869861245357332}, "loss": {"scale": 6.573977128014093}},
        {"optimizer": {"lr": 0.01}, "loss": {"scale": 28.645225810361822}},
    ]
    rows = [
        {"task": "t", "loss": "arcface", "status": "completed", "auroc": a, "val_auroc": v}
        for a, v in ((0.7, 0.9), (0.8, 0.6), (0.75, 0.7))
    ]
    notes = label_variants(rows, configs)
    names = [r["loss"] for r in rows]
    assert len(set(names)) == 3 and all(len(n) <= 18 and n.startswith("arcface @") for n in names)
    assert rows[0]["variant"] == "loss.scale=28.645225810361822, optimizer.lr=0.0012520653814999472"
    assert f"{names[0]} = {rows[0]['variant']}" in notes[0]  # the full parameters are said
    best = max(summarize(rows), key=lambda s: s.val_median)  # chosen by validation, shown
    assert best.loss == names[0] and best.val_median == 0.9 and best.median == 0.7
    short = [{"task": "t", "loss": "softmax", "status": "completed"} for _ in range(2)]
    label_variants(short, [{"seed_x": 1}, {"seed_x": 2}])
    assert [r["loss"] for r in short] == ["softmax (seed_x=1)", "softmax (seed_x=2)"]  # fits


def test_a_task_at_the_ceiling_is_said_and_its_tests_are_skipped(tmp_path):
    import numpy as np

    from adabench.files import write_json
    from adabench.report import report

    for loss in ("arcface", "softmax", "baseline_pixels"):
        for seed in range(3):
            run = tmp_path / f"{loss}-{seed}"
            write_json(
                run / "metrics.json",
                {
                    "status": "completed",
                    "loss": loss,
                    "dataset": "digits",
                    "seed": seed,
                    "baseline": "pixels" if loss.startswith("baseline") else None,
                    "data": {"normal": ["1"], "abnormal": ["7"]},
                    "config": {},
                    "config_hash": f"{loss}{seed}",
                    "metrics": {"auroc": 1.0},
                },
            )
            np.savez(run / "scores.npz", score=np.array([0.1, 0.2, 5.0]), is_abnormal=[0, 0, 1])
    out = report([tmp_path], tmp_path / "report", plots=False, quiet=True)
    assert out["tests"] == [] and out["pairs"] == []  # nothing a test could tell apart
    summary = (tmp_path / "report" / "summary.md").read_text()
    assert "digits: 1 vs 7: every run scores auroc = 1.0000, the metric's ceiling" in summary
