"""record.py: provenance a run writes into metrics.json."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys

import pytest

from adabench.files import write_json
from adabench.record import RunRecord, config_hash, git_commit
from adabench.report import collect_runs


def git(repo, *args: str) -> str:
    out = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_commit_is_read_once_per_process_and_marks_changes(tmp_path):
    dirty, clean = tmp_path / "dirty", tmp_path / "clean"
    for repo in (dirty, clean):
        repo.mkdir()
        git(repo, "init", "-q")
        (repo / "f.txt").write_text("a")
        git(repo, "add", "f.txt")
        git(repo, "commit", "-q", "-m", "one")
    first = git(clean, "rev-parse", "HEAD")
    assert git_commit(clean) == first
    (clean / "f.txt").write_text("b")  # a commit made while a sweep runs is not the sweep's code
    git(clean, "commit", "-q", "-am", "two")
    assert git(clean, "rev-parse", "HEAD") != first
    assert git_commit(clean) == first
    (dirty / "f.txt").write_text("changed")
    assert git_commit(dirty) == git(dirty, "rev-parse", "HEAD") + "-dirty"
    assert git_commit(tmp_path) is None  # not a repository


def test_config_hash_ignores_paths_and_loggers_only():
    base = {"seed": 0, "loss": {"name": "arcface"}, "paths": {"data_dir": "a"}, "logger": None}
    assert config_hash(base) == config_hash({**base, "paths": {"data_dir": "b"}, "logger": "csv"})
    assert config_hash(base) != config_hash({**base, "seed": 1})


def test_the_report_tells_a_running_run_from_an_interrupted_one(tmp_path):
    live = RunRecord(tmp_path / "sweep" / "0-arcface-digits-s0", {"loss": "arcface", "seed": 0})
    assert live.data["pid"] == os.getpid() and live.data["host"] == socket.gethostname()
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True
    )
    for name, host, pid in (
        ("1-cosface-digits-s0", socket.gethostname(), int(gone.stdout)),  # its process exited
        ("2-softmax-digits-s0", "another-machine", os.getpid()),  # not checkable from here
        ("3-l2softmax-digits-s0", socket.gethostname(), None),  # written before pids were kept
    ):
        record = {"status": "running", "loss": name.split("-")[1], "seed": 0, "host": host}
        write_json(tmp_path / "sweep" / name / "metrics.json", {**record, "pid": pid})
    status = {r["loss"]: r["status"] for r in collect_runs([tmp_path / "sweep"])}
    assert status == {
        "arcface": "running",
        "cosface": "interrupted",
        "softmax": "running or interrupted",
        "l2softmax": "interrupted",
    }


def test_a_changed_config_never_overwrites_a_completed_result_in_its_folder(tmp_path, capsys):
    """A sweep re-run after its preset changed maps its jobs to the same folders."""
    import json

    from adabench.run import train

    from .conftest import compose_config

    def run(*overrides: str) -> dict:
        cfg = compose_config("logger=csv", f"paths.output_dir={tmp_path}", *overrides)
        train(cfg)
        return json.loads((tmp_path / "metrics.json").read_text())

    first = run("scorer.k=1")
    assert (tmp_path / "csv" / "metrics.csv").exists()
    second = run("scorer.k=3")  # another config, the same folder
    assert second["config_hash"] != first["config_hash"]
    kept = tmp_path / "superseded" / first["config_hash"]
    assert json.loads((kept / "metrics.json").read_text()) == first
    assert (kept / "scores.npz").exists() and (kept / "split.json").exists()
    assert (kept / "csv" / "metrics.csv").exists()
    assert f"the folder's earlier attempt kept in {kept}" in capsys.readouterr().out
    rows = collect_runs([tmp_path])  # the report counts the folder's current result only
    assert [(r["status"], r["config_hash"]) for r in rows] == [("completed", second["config_hash"])]
    run("scorer.k=3")  # the same config again: resumed, nothing moved
    assert "skipped (resume)" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "superseded").iterdir()) == [first["config_hash"]]


def test_a_failed_attempt_is_kept_when_its_job_runs_again(tmp_path, capsys, recwarn):
    import json

    from adabench.errors import DivergedError
    from adabench.run import train

    from .conftest import compose_config

    out = f"paths.output_dir={tmp_path}"
    bad = compose_config("logger=csv", out, "loss=l2softmax", "loss.alpha=1e38")
    with pytest.raises(DivergedError):
        train(bad)  # fails in training, with its CSV log written
    failed = json.loads((tmp_path / "metrics.json").read_text())
    assert failed["status"] == "failed" and (tmp_path / "csv").exists()
    capsys.readouterr()
    recwarn.clear()
    train(compose_config("logger=csv", out, "loss=l2softmax"))
    kept = tmp_path / "superseded" / f"{failed['config_hash']}-failed"
    assert json.loads((kept / "metrics.json").read_text())["error"] == failed["error"]
    assert (kept / "csv").exists()
    said = capsys.readouterr().err + " ".join(str(w.message) for w in recwarn.list)
    assert "exists and is not empty" not in said  # Lightning found no old logs to delete
    assert json.loads((tmp_path / "metrics.json").read_text())["status"] == "completed"


def test_the_packages_that_shape_a_result_are_recorded_with_their_versions():
    from importlib import metadata

    from adabench.record import package_versions

    versions = package_versions()
    assert versions["torch"] == metadata.version("torch")
    assert "optuna" in versions  # the tuner, where a study drew the run
