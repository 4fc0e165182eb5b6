"""benchmarks/sweep_cost.py --from-runs: worker time of a sweep that ran in several processes."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

from .conftest import ROOT

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)


def write_run(folder, name, pid, start_s, seconds, train_s):
    """A completed run of process ``pid`` that started ``start_s`` after T0."""
    start = T0 + timedelta(seconds=start_s)
    record = {
        "status": "completed",
        "baseline": None,
        "host": "vm",
        "pid": pid,
        "started_at": start.isoformat(),
        "finished_at": (start + timedelta(seconds=seconds)).isoformat(),
        "times": {"setup_s": 1.0, "train_s": train_s, "embed_s": 1.0, "total_s": seconds - 1},
    }
    (folder / name).mkdir(parents=True)
    (folder / name / "metrics.json").write_text(json.dumps(record))


@pytest.fixture
def two_workers(tmp_path):
    """Worker 1: runs at 0–100 s and 100–200 s; worker 2: 50–150 s, then, after an hour's
    pause (another session, same pid), 4000–4100 s."""
    sweep = tmp_path / "suite"
    write_run(sweep, "a", 1, 0, 100, 80)
    write_run(sweep, "b", 1, 100, 100, 80)
    write_run(sweep, "c", 2, 50, 100, 80)
    write_run(sweep, "d", 2, 4000, 100, 80)
    return sweep


def test_worker_time_comes_from_the_runs_timestamps(two_workers):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import sweep_cost
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    runs = [json.loads(p.read_text()) for p in sorted(two_workers.rglob("metrics.json"))]
    spans = sweep_cost.worker_spans(runs, gap=300)
    assert sorted(t1 - t0 for t0, t1 in spans) == [100, 100, 200]  # the pause splits worker 2
    assert sweep_cost.union_length(spans) == 300  # 0–200 and 4000–4100: overlap counted once
    assert len(sweep_cost.worker_spans(runs, gap=1e6)) == 2


def test_the_script_reports_worker_time_shares_and_the_time_on_n_cores(two_workers):
    cmd = [
        sys.executable,
        str(ROOT / "benchmarks" / "sweep_cost.py"),
        str(two_workers),
        "--from-runs",
        "--cores",
        "2",
        "--budget",
        "400",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    assert "by 3 worker stretches" in out and "worker time 0.11 h" in out  # 400 s
    assert "share not spent training: 20.0%" in out  # 4 x 80 s of 400 s trained
    assert "ratio: 0.500" in out  # 400 worker-s / 2 cores = 200 s of a 400-s budget


def test_since_keeps_the_runs_started_from_then_on(two_workers):
    cmd = [sys.executable, str(ROOT / "benchmarks" / "sweep_cost.py"), str(two_workers)]
    since = (T0 + timedelta(seconds=3000)).isoformat()
    out = subprocess.run([*cmd, "--from-runs", "--since", since], capture_output=True, text=True)
    assert "1 of 1 runs completed" in out.stdout and "by 1 worker stretches" in out.stdout


def test_adabench_cost_skips_results_that_resume_set_aside(two_workers):
    # a result of an older config, moved to superseded/ when its folder ran again
    write_run(two_workers / "a" / "superseded", "0123abcd", 9, 9000, 100, 80)
    exe = [sys.executable, "-m", "adabench.cli", "cost", str(two_workers), "--from-runs"]
    out = subprocess.run([*exe, "--budget", "400"], capture_output=True, text=True, check=True)
    assert "4 of 4 runs completed" in out.stdout and "by 3 worker stretches" in out.stdout
    assert "ratio (time on 2 cores / budget): 0.500" in out.stdout
    assert "| training the unfrozen layers + neck + head | 320.0 | 80.0% |" in out.stdout
    no_wall = subprocess.run([*exe[:-1]], capture_output=True, text=True)
    assert no_wall.returncode == 2 and "give --wall FILE" in no_wall.stderr
