"""Load a dataset's train and test pools as uint8 ``[N, C, H, W]`` tensors, decoded once, cached.

A process keeps the pools it read last (:data:`KEPT_IN_MEMORY`): the runs of a sweep or the
trials of a study that share a dataset read its cache file once, not once per run.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch

from adabench.console import say
from adabench.data.images import ImagePool, fit_images
from adabench.data.sources import ImageSource
from adabench.errors import ConfigError
from adabench.files import checksum, write_cache

CACHE_VERSION = 3
KEPT_IN_MEMORY = 2  # pools a process keeps: the train and test pools of one dataset
_KEPT: OrderedDict[Path, ImagePool] = OrderedDict()  # cache file → its pool, last used last


def _keep(path: Path, pool: ImagePool) -> ImagePool:
    _KEPT[path] = pool
    _KEPT.move_to_end(path)
    while len(_KEPT) > KEPT_IN_MEMORY:
        _KEPT.popitem(last=False)
    return pool


def cache_key(split: str, source: ImageSource) -> str:
    """Hash of everything that changes a decoded pool (source, its identity, size, channels)."""
    parts: dict[str, Any] = {
        "v": CACHE_VERSION,
        "source": f"{type(source).__module__}.{type(source).__qualname__}",
        "split": split,
        "size": source.image_size,
        "channels": source.channels,
        **source.identity(split),
    }
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


def load_pool(
    split: str, source: ImageSource, cache_dir: str | Path | None = None, name: str = "pool"
) -> ImagePool:
    """Load one split (``train`` or ``test``) from ``source``, fitted to its size and channels.

    Decoding happens once; the result is cached (atomically) under ``cache_dir`` keyed by
    :func:`cache_key`, and later calls read the cache.

    Raises:
        ConfigError: bad image size / channels.
        DataError: data missing or unreadable.
    """
    size, channels = source.image_size, source.channels
    if size < 8:
        raise ConfigError(f"dataset.image_size must be >= 8, got {size}.")
    if channels not in (1, 3):
        raise ConfigError(f"dataset.channels must be 1 or 3, got {channels}.")
    path = key = None
    if cache_dir:
        key = cache_key(split, source)
        path = (Path(cache_dir) / f"{name}-{split}-{key}.pt").resolve()
        if path in _KEPT and path.exists():  # the key names the content: the same pool
            return _keep(path, _KEPT[path])
        if path.exists() and (cached := _read_cache(path, key)) is not None:
            return _keep(path, cached)
    pool = source.load(split)
    pool.images = fit_images(pool.images, size, channels)
    pool.key = key
    if path is not None:
        blob = {
            "images": pool.images,
            "labels": pool.labels,
            "classes": pool.classes,
            "skipped": pool.skipped,
            "ids": pool.ids,
            "checksum": checksum(pool.images, pool.labels),
        }
        write_cache(path, lambda tmp: torch.save(blob, tmp))
        _keep(path, pool)
    return pool


def _read_cache(path: Path, key: str) -> ImagePool | None:
    """The pool a cache file holds, or ``None`` (file removed) when it fails to load or verify.

    Its images and labels must match the checksum written with them: a file changed in place
    (a disk error, a stray write) is rebuilt with one warning, never trusted.
    """
    try:
        blob = torch.load(path, weights_only=True)
        sealed = blob.get("checksum")
        if sealed is not None and sealed == checksum(blob["images"], blob["labels"]):
            return ImagePool(
                blob["images"],
                blob["labels"],
                list(blob["classes"]),
                list(blob["skipped"]),
                key,
                blob["ids"],
            )
        why = "its checksum does not match" if sealed else "it has no checksum (older adabench)"
    except Exception as err:  # noqa: BLE001 - an unreadable cache is rebuilt, never trusted
        why = f"it does not load ({type(err).__name__})"
    say(f"[adabench] warning: decoded-image cache {path} rebuilt: {why}.", err=True)
    path.unlink(missing_ok=True)
    return None
