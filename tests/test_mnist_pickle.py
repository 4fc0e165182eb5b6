"""benchmarks/mnist_from_pickle.py: the classic pickle → torchvision's MNIST layout, exactly."""

from __future__ import annotations

import gzip
import importlib.util
import pickle
import sys

import numpy as np
import pytest
from torchvision.datasets import MNIST

from .conftest import ROOT


def load_script():
    spec = importlib.util.spec_from_file_location(
        "mnist_from_pickle", ROOT / "benchmarks" / "mnist_from_pickle.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_pickle(path, per_class=(3, 1, 2)):
    """train / valid / test parts with ``per_class`` images of each digit, pixels k / 256."""
    rng = np.random.default_rng(0)
    parts, images = [], []
    for n in per_class:
        y = np.repeat(np.arange(10), n)
        x = rng.integers(0, 256, size=(len(y), 784)).astype(np.uint8)
        images.append(x)
        parts.append(((x / 256).astype(np.float32), y.astype(np.int64)))
    with gzip.open(path, "wb") as f:
        pickle.dump(tuple(parts), f)
    return images, parts


def test_the_pickle_becomes_torchvisions_mnist_byte_for_byte(tmp_path, monkeypatch):
    script = load_script()
    images, parts = fake_pickle(tmp_path / "mnist.pkl.gz")
    monkeypatch.setattr(script, "TRAIN_COUNTS", [4] * 10)  # train + valid
    monkeypatch.setattr(script, "TEST_COUNTS", [2] * 10)
    argv = ["mnist_from_pickle.py", str(tmp_path / "mnist.pkl.gz"), str(tmp_path / "data")]
    monkeypatch.setattr(sys, "argv", argv)
    script.main()
    train = MNIST(tmp_path / "data", train=True, download=False)
    test = MNIST(tmp_path / "data", train=False, download=False)
    expected_train = np.concatenate(images[:2]).reshape(-1, 28, 28)
    np.testing.assert_array_equal(train.data.numpy(), expected_train)
    np.testing.assert_array_equal(train.targets.numpy(), np.r_[parts[0][1], parts[1][1]])
    np.testing.assert_array_equal(test.data.numpy(), images[2].reshape(-1, 28, 28))
    assert not list((tmp_path / "data" / "MNIST" / "raw").glob(".*.tmp"))


def test_wrong_counts_or_pixels_are_refused(tmp_path, monkeypatch):
    script = load_script()
    fake_pickle(tmp_path / "mnist.pkl.gz")
    argv = ["mnist_from_pickle.py", str(tmp_path / "mnist.pkl.gz"), str(tmp_path / "data")]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(ValueError, match=r"train class counts \[4, 4, .*differ from MNIST's"):
        script.main()
    assert not (tmp_path / "data" / "MNIST").exists()  # nothing written
    with pytest.raises(ValueError, match="not k/256"):
        script.to_uint8(np.full((1, 784), 0.3, dtype=np.float32))
