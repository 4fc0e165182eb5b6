"""Result files and atomic writes: a crash never leaves a half-written file to be trusted."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

RESULT_FILE = "metrics.json"  # one per run: status, metrics, times, config
SCORES_FILE = "scores.npz"  # one per run: per-test-image anomaly score and label
SPLIT_FILE = "split.json"  # one per run: which images (pool rows, file names) were in each part
EMBEDDINGS_FILE = "embeddings.npz"  # with save_embeddings=true: what was scored, with labels
WEIGHTS_FILE = "model.pt"  # with save_weights=true: the trained state dict
CSV_DIR = "csv"  # Lightning's CSV logger: per-step metrics
DETECTOR_DIR = "detector"  # with save_detector=true: what adabench predict reads
RUN_OUTPUTS = (
    RESULT_FILE,
    SCORES_FILE,
    SPLIT_FILE,
    EMBEDDINGS_FILE,
    WEIGHTS_FILE,
    CSV_DIR,
    DETECTOR_DIR,
)
SUPERSEDED_DIR = "superseded"  # results of another config that ran in the same folder before


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it over ``path``.

    The rename is atomic on POSIX file systems, so readers see the old file or the new one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file normal permissions
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_json(path: str | Path, data: Any) -> Path:
    """Write ``data`` as indented JSON, atomically."""
    text = json.dumps(data, indent=2, sort_keys=False, default=str, allow_nan=True)
    return atomic_write(path, lambda tmp: tmp.write_text(text + "\n", encoding="utf-8"))


def load_result(path: str | Path) -> dict:
    """A ``metrics.json`` file's record (raises ``OSError`` / ``ValueError`` when unreadable)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def read_result(run_dir: str | Path) -> dict | None:
    """The ``metrics.json`` in ``run_dir``, or ``None`` when missing or unreadable."""
    try:
        return load_result(Path(run_dir) / RESULT_FILE)
    except (OSError, ValueError):
        return None


def display_path(path: str | Path) -> str:
    """``path`` relative to the working directory when it lies below it, else absolute."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def sweep_group(sweep_dir: str | Path) -> str:
    """The name that groups a sweep's runs (W&B group, report title): its folder path, flattened."""
    return str(sweep_dir).strip("/").replace("/", "_")


def save_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` as a compressed ``.npz``, atomically."""

    def save(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)

    atomic_write(path, save)


def free_space(path: str | Path) -> str:
    """``"<n> MiB free on <folder>"`` for the nearest existing folder of ``path``."""
    folder = Path(path)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return "free space unknown"
    return f"{free / 2**20:.1f} MiB free on {folder}"


def checksum(*arrays: Any) -> str:
    """CRC-32 of the bytes of tensors or arrays (a cache entry's seal against damage in place)."""
    crc = 0
    for a in arrays:
        a = a.detach().cpu() if hasattr(a, "detach") else a
        data = np.ascontiguousarray(a.numpy() if hasattr(a, "numpy") else a)
        crc = zlib.crc32(memoryview(data.reshape(-1).view(np.uint8)), crc)
    return f"crc32:{crc:08x}"


_UNWRITABLE: set[str] = set()  # cache folders already said to be unwritable (one line each)


def write_cache(path: Path, write: Callable[[Path], None], cache: Path | None = None) -> bool:
    """:func:`atomic_write` for a cache file: a full or read-only disk skips it with one warning.

    A cache saves time only: the run goes on without it. Returns whether the file was written.
    ``cache`` is the cache's folder, named in the warning (default: the file's folder).
    """
    try:
        atomic_write(path, write)
        return True
    except (OSError, RuntimeError) as err:  # torch.save reports a full disk as RuntimeError
        folder = str(cache or Path(path).parent)
        if folder not in _UNWRITABLE:
            _UNWRITABLE.add(folder)
            from adabench.console import say

            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            if "unexpected pos" in reason or "enforce fail" in reason:
                reason = "the disk is full"
            say(
                f"[adabench] warning: cannot write the cache under {folder} ({reason}; "
                f"{free_space(folder)}); going on without it. Free some space, or set "
                "paths.cache_dir=/a/larger/disk.",
                err=True,
            )
        return False
