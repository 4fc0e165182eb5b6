"""The faults of docs/reliability.md's "Faults that used to lose results", each rerun here.

Two sweeps in one folder, datasets that share a folder name, a resumed study, caches damaged in
place, a class folder linked to its parent, CPU-dependent figures (in test_train.py) and the
degraded paths: damaged or missing scores, NaN metrics, full disks, a locked study storage and
a decompression bomb.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from adabench.data import folder, pools
from adabench.data.sources import ImageFolder
from adabench.errors import DataError
from adabench.files import checksum, write_json
from adabench.record import FolderClaim, FolderTaken, find_completed
from adabench.report import report
from adabench.report.collect import collect_runs
from adabench.trunk_cache import TrunkCache

from .conftest import ROOT, SMOKE, folder_args, train_in_process, write_image_tree

# -- 1. two sweeps into one folder -------------------------------------------------------------


def test_a_run_folder_is_held_by_one_process_at_a_time(tmp_path):
    with FolderClaim(tmp_path), pytest.raises(FolderTaken, match="in use by another process"):
        FolderClaim(tmp_path)
    FolderClaim(tmp_path).release()  # released: free again (kill -9 releases it too)


def test_a_live_running_record_counts_as_taken_where_locks_do_not_work(tmp_path, monkeypatch):
    import errno
    import fcntl

    helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    write_json(tmp_path / "metrics.json", {"status": "running", "pid": helper.pid})
    FolderClaim(tmp_path).release()  # flock works: a free lock wins over a record (pid reuse)

    def no_flock(*args):
        raise OSError(errno.ENOLCK, "No locks available")  # e.g. a network mount without flock

    monkeypatch.setattr(fcntl, "flock", no_flock)
    try:
        write_json(
            tmp_path / "metrics.json",
            {"status": "running", "pid": helper.pid, "host": os.uname().nodename},
        )
        with pytest.raises(FolderTaken, match=f"pid {helper.pid}"):
            FolderClaim(tmp_path)
    finally:
        helper.kill()
        helper.wait()
    FolderClaim(tmp_path).release()  # its process is gone: the record is an interrupted run


def test_a_run_never_touches_a_folder_another_process_holds(tmp_path):
    done = train_in_process(tmp_path / "run", "logger=none")
    before = (tmp_path / "run" / "metrics.json").read_bytes()
    with FolderClaim(tmp_path / "run"), pytest.raises(FolderTaken):
        train_in_process(tmp_path / "run", "logger=none", "seed=1")
    assert (tmp_path / "run" / "metrics.json").read_bytes() == before
    assert done["status"] == "completed" and not (tmp_path / "run" / "superseded").exists()


@pytest.mark.slow
def test_two_identical_sweeps_into_one_folder_lose_nothing(tmp_path):
    sweep = tmp_path / "sweep"
    args = ["-m", "loss=softmax,arcface_s16", f"hydra.sweep.dir={sweep}", *SMOKE, "logger=csv"]
    cmd = [sys.executable, str(ROOT / "train.py"), *args]
    pipe = subprocess.PIPE
    procs = [
        subprocess.Popen(cmd, cwd=tmp_path, stdout=pipe, stderr=pipe, text=True) for _ in (0, 1)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    records = [json.loads(p.read_text()) for p in sorted(sweep.glob("*/metrics.json"))]
    assert len(records) == 2 and {r["status"] for r in records} == {"completed"}
    assert not list(sweep.glob("*/superseded"))  # nobody moved the other's live run aside
    for proc, (out, err) in zip(procs, outs, strict=True):
        assert proc.returncode == 0, err[-2000:]
        last = out.strip().splitlines()[-1]  # counts what is on disk, never a false failure
        assert " 0 failed" in last and last.startswith(("2/2 completed", "1/2 completed")), last
    said = "".join(out for out, _ in outs)
    assert "FAILED" not in said + "".join(err for _, err in outs)


# -- 2. datasets that share a folder name -------------------------------------------------------


def fake_run(folder_: Path, root: str, seed: int, auroc: float, fingerprint: str | None) -> None:
    data = {"normal": ["a"], "abnormal": ["b"]}
    if fingerprint:
        data["fingerprint"] = {"root": root, "hash": fingerprint}
    record = {
        "status": "completed",
        "loss": "arcface",
        "dataset": "folder",
        "seed": seed,
        "protocol": "anomaly",
        "config_hash": "h",
        "data": data,
        "config": {"dataset": {"root": root}},
        "metrics": {"auroc": auroc},
    }
    write_json(folder_ / "metrics.json", record)


@pytest.mark.parametrize("fingerprinted", [True, False])
def test_datasets_that_share_a_folder_name_are_two_tasks(tmp_path, fingerprinted):
    fake_run(tmp_path / "r1", "/data/A/images", 0, 1.0, "aaaa" if fingerprinted else None)
    fake_run(tmp_path / "r2", "/data/B/images", 0, 0.4975, "bbbb" if fingerprinted else None)
    notes: list[str] = []
    rows = collect_runs([tmp_path], notes)
    assert sorted(r["dataset"] for r in rows) == [
        "folder:images[A/images]",
        "folder:images[B/images]",
    ]
    assert len({r["task"] for r in rows}) == 2 and {r["status"] for r in rows} == {"completed"}
    assert "2 different datasets are labelled folder:images" in notes[0]


def test_one_seed_twice_in_one_row_is_refused_with_the_reason(tmp_path):
    for name in ("r1", "r2"):  # the same data, the same seed, in two folders
        fake_run(tmp_path / name, "/data/A/images", 0, 0.9, "aaaa")
    fake_run(tmp_path / "r3", "/data/A/images", 1, 0.8, "aaaa")
    notes: list[str] = []
    rows = {Path(r["run_dir"]).name: r for r in collect_runs([tmp_path], notes)}
    assert rows["r1"]["status"] == rows["r2"]["status"] == "repeated seed"
    assert rows["r3"]["status"] == "completed"
    assert "seed 0 of folder:images: a vs b / arcface was found 2 times" in notes[0]


def test_a_run_records_its_data_fingerprint(tmp_path, image_tree):
    m = train_in_process(tmp_path / "run", *folder_args(image_tree, "a", "b"), "logger=none")
    fingerprint = m["data"]["fingerprint"]
    assert fingerprint["root"] == str(image_tree.resolve()) and len(fingerprint["hash"]) == 16


# -- 3. a resumed tuning study ----------------------------------------------------------------


def test_a_resumed_study_gets_a_new_sampler_seed_and_dead_trials_fail(tmp_path):
    from optuna.trial import TrialState

    from adabench.tune import study as st

    study = st.open_study(st.storage_of(tmp_path), "s", "maximize", tmp_path)
    assert st.sampler_seed(study, 0, worker=1) == 1  # a new study: the worker's seed
    study.tell(study.ask(), 0.5)
    dead = study.ask()  # left RUNNING by a killed process, its folder free
    dead.set_user_attr(st.RUN_DIR, str(tmp_path / "job"))
    (tmp_path / "job").mkdir()
    with FolderClaim(tmp_path / "job"):  # while a live run holds the folder, the trial lives
        assert st.fail_abandoned(study, min_age_s=0) == []
    assert st.fail_abandoned(study, min_age_s=0) == [dead.number]
    assert study.trials[dead.number].state == TrialState.FAIL
    assert st.finished(study) == 1  # the dead trial spent no budget: the study runs another
    assert st.sampler_seed(study, 0, worker=1) == 1 + 7919 * 2  # resumed: a seed of its own
    seeds = study.user_attrs["sampler_seeds"]
    assert [s["seed"] for s in seeds] == [1, 1 + 7919 * 2]


# -- 4. caches damaged in place -------------------------------------------------------------------


def test_a_decoded_pool_changed_in_place_is_rebuilt(tmp_path, capsys):
    tree = write_image_tree(tmp_path / "imgs")
    source = ImageFolder(16, 1, str(tree))
    fresh = pools.load_pool("train", source, tmp_path / "cache")
    (path,) = (tmp_path / "cache").glob("pool-train-*.pt")
    blob = torch.load(path, weights_only=True)
    blob["images"][: len(blob["images"]) // 2] = 0  # half the images changed, checksum kept
    torch.save(blob, path)
    pools._KEPT.clear()  # the next process
    again = pools.load_pool("train", source, tmp_path / "cache")
    assert torch.equal(again.images, fresh.images)
    assert "checksum does not match" in capsys.readouterr().err


@pytest.mark.parametrize("damage", ["values", "nan"])
def test_a_trunk_shard_changed_in_place_is_recomputed(tmp_path, capsys, damage):
    from adabench import trunk_cache

    images = torch.randint(0, 255, (5, 1, 4, 4), dtype=torch.uint8)
    trunk = lambda x: x.float().mean(dim=(2, 3))  # noqa: E731 - a stand-in trunk
    TrunkCache(tmp_path, "k").outputs("pool", np.arange(5), images, trunk)
    (shard,) = (tmp_path / "trunk" / "k" / "pool" / "plain").glob("*.pt")
    blob = torch.load(shard, weights_only=True)
    blob["outputs"][0] = float("nan") if damage == "nan" else blob["outputs"][0] + 0.5
    torch.save(blob, shard)
    trunk_cache._READ.clear()  # the next process
    cache = TrunkCache(tmp_path, "k")
    torch.testing.assert_close(cache.outputs("pool", np.arange(5), images, trunk), trunk(images))
    assert cache.computed == 5 and "checksum does not match" in capsys.readouterr().err


def test_a_cache_that_cannot_be_written_is_skipped_with_one_warning(tmp_path, capsys, monkeypatch):
    def full_disk(*args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")

    monkeypatch.setattr(torch, "save", full_disk)
    images = torch.randint(0, 255, (4, 1, 4, 4), dtype=torch.uint8)
    trunk = lambda x: x.float().mean(dim=(2, 3))  # noqa: E731
    for view in ("plain", "hflip"):  # two failed writes into one cache: one line
        out = TrunkCache(tmp_path, "k").outputs("pool", np.arange(4), images, trunk, view=view)
        assert out.shape == (4, 1)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the disk is full" in err[0] and "MiB free" in err[0]
    assert "enforce fail" not in err[0]


# -- 5. folders read as their owner meant ---------------------------------------------------------


def test_a_class_folder_linked_to_its_parent_is_refused(tmp_path):
    tree = write_image_tree(tmp_path / "imgs")
    os.symlink(tree / "train", tree / "train" / "everything")
    with pytest.raises(DataError, match="everything links to .*holds the class folders"):
        folder.list_images(tree / "train")


def test_two_class_folders_that_are_one_folder_are_refused(tmp_path):
    tree = write_image_tree(tmp_path / "imgs")
    os.symlink(tree / "train" / "a", tree / "train" / "e")
    with pytest.raises(DataError, match="are the same folder"):
        folder.list_images(tree / "train")


def test_a_link_loop_inside_a_class_folder_is_refused(tmp_path):
    tree = write_image_tree(tmp_path / "imgs")
    os.symlink(tree / "train" / "a", tree / "train" / "a" / "again")
    with pytest.raises(DataError, match="again links to .*which holds it"):
        folder.list_images(tree / "train")


def test_a_decompression_bomb_is_refused_not_decoded(tmp_path):
    tree = write_image_tree(tmp_path / "imgs")
    Image.new("1", (20000, 20000)).save(tree / "train" / "a" / "huge.png")  # 400 M pixels
    with pytest.raises(DataError, match="huge.png .*DecompressionBombError"):
        folder.load_image_folder(tree / "train", 16, 1)


# -- 7. degraded paths ------------------------------------------------------------------------


def scored_run(folder_: Path, seed: int, scores: np.ndarray, auroc: float) -> None:
    fake_run(folder_, "/data/A/images", seed, auroc, "aaaa")
    labels = np.array([0, 0, 1, 1])
    np.savez(folder_ / "scores.npz", score=scores, is_abnormal=labels)


def test_damaged_or_missing_scores_are_named_and_the_report_goes_on(tmp_path):
    scored_run(tmp_path / "good", 0, np.array([0.1, 0.2, 0.8, 0.9]), 1.0)
    scored_run(tmp_path / "garbled", 1, np.zeros(4), 1.0)
    (tmp_path / "garbled" / "scores.npz").write_bytes(b"PK\x03\x04 not a zip")
    scored_run(tmp_path / "objects", 2, np.zeros(4), 1.0)
    np.savez(
        tmp_path / "objects" / "scores.npz",
        score=np.array([{}] * 4, dtype=object),
        is_abnormal=np.zeros(4),
    )
    fake_run(tmp_path / "unscored", "/data/A/images", 3, 0.7, "aaaa")
    out = report([tmp_path], tmp_path / "report", plots=False, quiet=True)
    status = {Path(r["run_dir"]).name: r["status"] for r in out["rows"]}
    assert status == {
        "good": "completed",
        "garbled": "unreadable scores",
        "objects": "unreadable scores",
        "unscored": "completed",
    }
    summary = (tmp_path / "report" / "summary.md").read_text()
    assert "garbled/scores.npz: unreadable" in summary and "allow_pickle" not in summary
    assert "objects/scores.npz: unreadable (it holds Python objects" in summary
    assert (
        "1 run(s) have no scores.npz, so their metrics are used as recorded, unchecked" in summary
    )


def test_a_nan_metric_is_rerun_on_resume_and_fixed_by_the_report(tmp_path):
    scored_run(tmp_path / "run", 0, np.array([0.1, 0.2, 0.8, 0.9]), float("nan"))
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert find_completed(tmp_path / "run", record["config_hash"]) is None  # re-run, not trusted
    out = report([tmp_path], tmp_path / "report", plots=False, quiet=True, fix=True)
    assert [c.metric for c in out["corrections"]] == ["auroc"]
    fixed = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert fixed["metrics"]["auroc"] == 1.0 and np.isnan(fixed["audit"]["previous"]["auroc"])


def test_a_full_disk_after_training_still_shows_and_records_the_metrics(
    tmp_path, monkeypatch, capsys
):
    from adabench import run

    def full(path, arrays):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(run, "save_arrays", full)
    with pytest.raises(run.OutputsNotWritten, match="scores.npz failed .*MiB free on"):
        train_in_process(tmp_path / "run", "logger=none")
    said = capsys.readouterr()
    assert "computed auroc=" in said.err
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert record["status"] == "failed" and "auroc" in record["metrics"]


def test_a_log_file_that_cannot_be_written_is_said_once(capsys):
    from adabench.console import QuietFileHandler

    handler = QuietFileHandler("/dev/full")  # every write fails: No space left on device
    log = logging.getLogger("adabench.test.full")
    log.addHandler(handler)
    try:
        for i in range(50):
            log.warning("line %d", i)
    finally:
        log.removeHandler(handler)
        handler.close()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot write /dev/full" in err[0]


def test_cache_checksums_cover_every_byte():
    a = torch.arange(12, dtype=torch.float32)
    b = a.clone()
    b[7] = float(np.nextafter(np.float32(7), np.float32(8)))  # one bit
    assert checksum(a) != checksum(b) and checksum(a) == checksum(a.clone())


# -- Ctrl-C: what happened, how far, how to resume ---------------------------------------------


@pytest.mark.slow
def test_ctrl_c_in_a_sweep_says_what_was_interrupted_how_far_and_how_to_resume(tmp_path):
    import signal

    sweep = tmp_path / "sweep"
    # two jobs: 1 epoch (completes), then 1000 epochs (runs until it is interrupted)
    args = ["-m", "trainer.max_epochs=1,1000", f"hydra.sweep.dir={sweep}", *SMOKE, "logger=none"]
    pipe = subprocess.PIPE
    cmd = [sys.executable, str(ROOT / "train.py"), *args]
    run = subprocess.Popen(cmd, cwd=tmp_path, stdout=pipe, stderr=pipe, text=True)
    deadline = time.monotonic() + 240
    while True:  # wait until the long job's run has started (its metrics.json says running)
        assert time.monotonic() < deadline, "the long job never started"
        time.sleep(0.2)
        records = [json.loads(p.read_text()) for p in sweep.glob("*/metrics.json")]
        if any(
            r["status"] == "running" and r["config"]["trainer"]["max_epochs"] == 1000
            for r in records
        ):
            break
        assert run.poll() is None, run.communicate()
    run.send_signal(signal.SIGINT)
    out, err = run.communicate(timeout=120)
    (line,) = [x for x in (out + err).splitlines() if "interrupted by Ctrl-C" in x]
    assert " during " in line and ": 1/2 completed; resume with: python " in line, line
    assert line.endswith("hydra.sweep.dir=sweep") and "trainer.max_epochs=1,1000" in line
    assert run.returncode != 0
