"""Read the records of an offline W&B run file (``run-*.wandb``) to check what it holds.

The file is W&B's LevelDB-style log: a 7-byte header, then 32 KiB blocks of chunks, each with
a 7-byte header (crc32c, little-endian length, type: 1 full, 2 first, 3 middle, 4 last).
"""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

BLOCK = 32768
HEADER = 7


def records(path: Path):
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B", "not a W&B run file"
    pos, buf = HEADER, b""
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
        if kind == 0 and length == 0:
            break
        if pos + HEADER + length > len(data):
            break  # W&B is still writing this chunk: the records before it are complete
        chunk = data[pos + HEADER : pos + HEADER + length]
        pos += HEADER + length
        buf = chunk if kind in (1, 2) else buf + chunk
        if kind in (1, 4):
            rec = pb.Record()
            rec.ParseFromString(buf)
            yield rec


def summary(path: Path, wait_for: str | None = None, timeout: float = 60.0) -> dict:
    """The run's summary: the last value of each key over every summary record.

    ``wait_for``: re-read until that key is there (W&B's service may still be writing the file
    after ``finish()`` returns on a loaded machine), at most ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        out: dict = {}
        for rec in records(path):
            if rec.WhichOneof("record_type") == "summary":
                for item in rec.summary.update:
                    key = item.key or "/".join(item.nested_key)
                    out[key] = json.loads(item.value_json)
        if wait_for is None or wait_for in out or time.monotonic() > deadline:
            return out
        time.sleep(0.2)


def history(path: Path, wait_for: tuple[str, ...] = (), timeout: float = 60.0) -> dict:
    """Every key logged to the run's history, with its last value (media as their JSON).

    ``wait_for``: re-read until all those keys are there (W&B's service writes media after
    ``finish()`` returns on a loaded machine), at most ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        out = _history_once(path)
        if all(k in out for k in wait_for) or time.monotonic() > deadline:
            return out
        time.sleep(0.2)


def _history_once(path: Path) -> dict:
    out: dict = {}
    for rec in records(path):
        if rec.WhichOneof("record_type") == "history":
            for item in rec.history.item:
                if item.key:
                    out[item.key] = json.loads(item.value_json)
                    continue
                *outer, last = item.nested_key  # media: {"test/roc": {"_type": ..., ...}}
                node = out.setdefault(outer[0], {}) if outer else out
                node[last] = json.loads(item.value_json)
    return out


def config(path: Path) -> dict:
    """The run's config: top-level key -> value."""
    out: dict = {}
    for rec in records(path):
        kind = rec.WhichOneof("record_type")
        updates = rec.run.config.update if kind == "run" else rec.config.update
        if kind in ("run", "config"):
            for item in updates:
                key = item.key or "/".join(item.nested_key)
                out[key] = json.loads(item.value_json)
    return out


def group(path: Path) -> str:
    """The W&B group the run was logged in ("" when none)."""
    for rec in records(path):
        if rec.WhichOneof("record_type") == "run":
            return rec.run.run_group
    return ""
