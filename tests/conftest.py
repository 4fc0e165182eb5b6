"""Shared fixtures: generated image folders and a Hydra config composer."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


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
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Keep every test's dataset cache and W&B files out of the user's home."""
    cache = tmp_path_factory.getbasetemp() / "adabench-cache"
    monkeypatch.setenv("ADABENCH_CACHE_DIR", str(cache))
    monkeypatch.setenv("WANDB_MODE", os.environ.get("WANDB_MODE", "offline"))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    yield
