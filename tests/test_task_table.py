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


def test_the_pair_matrix_orders_rows_by_rank_and_marks_better_equivalent_undecided():
    from types import SimpleNamespace

    from adabench.report.task_table import pair_matrix

    verdict = SimpleNamespace(
        losses={"a": {"mean_rank": 1.2}, "b": {"mean_rank": 1.9}, "c": {"mean_rank": 2.9}},
        pairs=[
            {"a": "a", "b": "b", "p_a_better": 0.03, "p_equivalent": 0.97, "p_b_better": 0.0},
            {"a": "a", "b": "c", "p_a_better": 0.99, "p_equivalent": 0.01, "p_b_better": 0.0},
            # stored the other way round: c vs b, b likelier better but undecided
            {"a": "c", "b": "b", "p_a_better": 0.0, "p_equivalent": 0.3, "p_b_better": 0.7},
        ],
    )
    headers, rows = pair_matrix(verdict)
    assert headers == ["row (by mean rank) vs column", "b", "c"]
    assert rows == [["a", "≈ 0.97", "> 0.99"], ["b", "", "? 0.70 / 0.30 / 0.00"]]
    worse = SimpleNamespace(losses=verdict.losses, pairs=[{**verdict.pairs[1], "a": "c", "b": "a"}])
    assert pair_matrix(worse)[1][0] == ["a", "", "< 0.99"]  # the column is better


def test_probabilities_are_rounded_down_so_an_undecided_pair_never_reads_as_decided():
    from types import SimpleNamespace

    from adabench.report.stats import prob
    from adabench.report.task_table import pair_matrix

    assert [prob(x) for x in (0.9499, 0.95, 1.0, 0.29, 0.0)] == [
        "0.94",
        "0.95",
        "1.00",
        "0.29",
        "0.00",
    ]
    verdict = SimpleNamespace(
        losses={"a": {"mean_rank": 1.0}, "b": {"mean_rank": 2.0}},
        pairs=[{"a": "a", "b": "b", "p_a_better": 0.0501, "p_equivalent": 0.9499, "p_b_better": 0}],
    )
    assert pair_matrix(verdict)[1] == [["a", "? 0.05 / 0.94 / 0.00"]]
