"""Shared fixtures: generated image folders and a Hydra config composer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig
from PIL import Image

from adabench.config import build
from adabench.resolvers import register

ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config) -> None:
    """Under pytest-xdist (``-n auto``) each worker gets its share of the cores, not all of them."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(workers)))


SMOKE = ["experiment=smoke", "trainer.enable_progress_bar=false"]


def run_train(args: list[str], cwd: Path, exe: list[str] | None = None, env: dict | None = None):
    cmd = (exe or [sys.executable, str(ROOT / "train.py")]) + args
    full_env = {**os.environ, **(env or {})}
    full_env = {k: v for k, v in full_env.items() if v is not None}
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=full_env, timeout=600)


def folder_args(root: Path, normal: str, abnormal: str) -> list[str]:
    """Overrides for dataset=folder on a generated tree, taking every image."""
    counts = (
        "n_reference",
        "n_normal_train",
        "n_test_normal",
        "n_test_abnormal",
        "n_test_reference",
    )
    return [
        "dataset=folder",
        f"dataset.root={root}",
        f"dataset.normal={normal}",
        f"dataset.abnormal={abnormal}",
        *(f"dataset.{c}=null" for c in counts),
    ]


def metrics_files(root: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(root.rglob("metrics.json"))]


def train_in_process(run_dir: Path, *overrides: str) -> dict:
    """``train(cfg)`` on a composed config (what train.py runs, without a subprocess)."""
    from adabench.run import train

    train(
        compose_config(
            "trainer.enable_progress_bar=false", f"paths.output_dir={run_dir}", *overrides
        )
    )
    (m,) = metrics_files(run_dir)
    return m


def compose_config(*overrides: str, smoke: bool = True, hydra: bool = False) -> DictConfig:
    """The composed ``train`` config (``experiment=smoke`` first unless ``smoke=False``;
    ``hydra=True`` keeps the ``hydra`` node, e.g. to read a sweeper's settings)."""
    register()
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        return compose(
            "train",
            overrides=[*(["experiment=smoke"] if smoke else []), *overrides],
            return_hydra_config=hydra,
        )


def loss_head(name: str, embedding_dim: int, num_classes: int, **params):
    """The head ``conf/loss/<name>.yaml`` builds, with ``params`` overriding its values."""
    node = dict(compose_config(f"loss={name}", smoke=False).loss)
    return build(
        {**node, **params}, where="loss", embedding_dim=embedding_dim, num_classes=num_classes
    )


def loss_names(baselines: bool = False) -> list[str]:
    """The options of the ``loss`` group (without the no-training baselines by default)."""
    names = sorted(p.stem for p in (ROOT / "conf" / "loss").glob("*.yaml"))
    return [n for n in names if baselines or not n.startswith("baseline_")]


def write_image_tree(
    root: Path, classes=("a", "b", "c", "d"), n_train=12, n_test=6, size=20, seed=0
):
    """A tiny ImageFolder tree whose classes differ by mean brightness and a stripe position."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("test", n_test)):
        for ci, name in enumerate(classes):
            d = root / split / name
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                img = rng.integers(0, 60, size=(size, size, 3), dtype=np.uint8)
                img[:, (ci * 4) % size : (ci * 4) % size + 3] = 200 + ci * 10
                Image.fromarray(img).save(d / f"{i:03d}.png")
    return root


@pytest.fixture
def image_tree(tmp_path: Path) -> Path:
    return write_image_tree(tmp_path / "imgs")


@pytest.fixture(autouse=True)
def _fresh_process_state(monkeypatch):
    """What a process keeps between runs starts empty in every test (and is put back after)."""
    from adabench import files, sweep_callback

    monkeypatch.delenv("ADABENCH_TUNE_WORKER", raising=False)
    monkeypatch.setattr(sweep_callback, "ACTIVE", None)
    monkeypatch.setattr(sweep_callback, "TAKEN", set())
    monkeypatch.setattr(files, "_UNWRITABLE", set())


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Keep every test's dataset cache and W&B files out of the user's home."""
    cache = tmp_path_factory.getbasetemp() / "adabench-cache"
    monkeypatch.setenv("ADABENCH_CACHE_DIR", str(cache))
    monkeypatch.setenv("WANDB_MODE", os.environ.get("WANDB_MODE", "offline"))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    yield


def _postgres_bin(name: str) -> str | None:
    import glob
    import shutil

    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found if isinstance(found, str) else (found[-1] if found else None)


@pytest.fixture(scope="session")
def postgres_url():
    """A PostgreSQL server of the test session's own: a temporary data folder, a local port.

    Debian's ``postgresql`` package provides ``initdb`` and ``pg_ctl`` (``.ci/run`` installs
    it); as root the server runs as the ``postgres`` user. Skips, naming what is missing.
    """
    import shutil
    import socket
    import tempfile

    initdb, pg_ctl = _postgres_bin("initdb"), _postgres_bin("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("no PostgreSQL server here (initdb, pg_ctl): apt-get install postgresql")
    pytest.importorskip("psycopg", reason="psycopg is not installed: pip install '.[tune]'")
    as_user: list[str] = []
    base = Path(tempfile.mkdtemp(prefix="adabench-pg-"))
    if os.geteuid() == 0:  # initdb refuses root
        if not shutil.which("runuser"):
            pytest.skip("running as root without runuser: cannot start PostgreSQL")
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(base, "postgres")
        base.chmod(0o755)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = base / "data"

    def run(*cmd: str) -> None:
        proc = subprocess.run([*as_user, *cmd], capture_output=True, text=True, timeout=120)
        if proc.returncode:
            pytest.skip(f"PostgreSQL did not start: {(proc.stderr or proc.stdout)[-300:]}")

    run(initdb, "-D", str(data), "-A", "trust", "-U", "adabench", "--no-sync")
    opts = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
    run(pg_ctl, "-D", str(data), "-o", opts, "-l", str(base / "server.log"), "-w", "start")
    try:
        import psycopg

        with psycopg.connect(
            f"host=127.0.0.1 port={port} user=adabench dbname=postgres", autocommit=True
        ) as conn:
            conn.execute("CREATE DATABASE studies")
        yield f"postgresql+psycopg://adabench@127.0.0.1:{port}/studies"
    finally:
        subprocess.run(
            [*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(base, ignore_errors=True)
