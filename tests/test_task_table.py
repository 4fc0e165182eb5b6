"""summary.md's task × row table: one line per task, the task's best in bold."""

from __future__ import annotations

from adabench.report.stats import GroupStats
from adabench.report.task_table import task_matrix


def stats(task: str, loss: str, median: float, n: int = 3, baseline: bool = False) -> GroupStats:
    nan = float("nan")
    return GroupStats(task, loss, n, median, median, 0.0, 0.0, nan, nan, nan, baseline)


def test_one_line_per_task_baselines_first_and_the_best_in_bold():
    rows = [
        stats("t1", "softmax", 0.80),
        stats("t1", "arcface", 0.90),
        stats("t1", "baseline_pixels", 0.85, baseline=True),
        stats("t2", "softmax", 0.70, n=2),
        stats("t2", "baseline_pixels", 0.75, baseline=True),
    ]
    headers, lines = task_matrix(rows, "auroc")
    assert headers == [
        "task (median auroc of 2–3 runs)",
        "baseline_pixels (no training)",
        "arcface",
        "softmax",
    ]
    assert lines == [
        ["t1", "0.8500", "**0.9000**", "0.8000"],
        ["t2", "**0.7500**", "–", "0.7000"],  # arcface did not run on t2
    ]


def test_lower_is_better_metrics_bold_the_smallest_and_one_task_gives_no_table():
    rows = [stats("t1", "a", 0.2), stats("t1", "b", 0.1), stats("t2", "a", 0.3)]
    _, lines = task_matrix(rows, "fpr_at_95tpr")
    assert lines[0] == ["t1", "0.2000", "**0.1000**"]
    assert task_matrix(rows[:2], "auroc") == ([], [])
