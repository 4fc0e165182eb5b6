"""Cache of a frozen trunk's outputs, so every loss and seed of a sweep computes them once.

Every loss in a sweep sees the same images through the same frozen layers; only what follows
the trunk is trained. The outputs are stored per image of a decoded pool, in the layout of the
decoded-image cache (:func:`adabench.data.pools.cache_key` names the pool):

    <cache_dir>/trunk/<trunk key>/<pool key>/<view>/<shard>.pt

``trunk key`` hashes what changes the trunk's output (model, the digest of the trunk's own
weights, frozen layers, early exit, input size and channels, normalisation, torch version);
``view`` is ``plain`` or ``hflip`` (the horizontally flipped image, which serves flip
augmentation). A run
loads the shards of its pool, computes only the images no shard holds yet (another seed's split
draws other images) and writes them as a new shard, atomically: parallel jobs never write the
same file, and a half-written shard is never read. A process reads each shard once: the next
run of a sweep (or trial of a study) in the same process reads only shards new to it.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from adabench.console import say
from adabench.files import checksum, write_cache

VIEWS = ("plain", "hflip")
CACHE_VERSION = 1
FOLDERS_KEPT = 4  # a process keeps the outputs of its last folders: train/test pool × 2 views
_READ: OrderedDict[Path, tuple[set[str], dict[int, Tensor]]] = OrderedDict()  # shards, outputs


def _kept(folder: Path) -> tuple[set[str], dict[int, Tensor]]:
    """The shard names read from ``folder`` and the outputs they (and this process) hold."""
    key = folder.resolve()
    entry = _READ.setdefault(key, (set(), {}))
    _READ.move_to_end(key)
    while len(_READ) > FOLDERS_KEPT:
        _READ.popitem(last=False)
    return entry


def module_digest(module: torch.nn.Module) -> str:
    """SHA-256 of a module's parameters and buffers (names, shapes, dtypes and values).

    The identity of a frozen trunk whatever its weights came from: a file, a package, the Hub, or
    a random initialisation (which differs per seed and must never be shared).
    """
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:20]


def trunk_key(**identity: Any) -> str:
    """Hash of everything that changes the trunk's outputs (pass it all as keywords)."""
    blob = json.dumps(
        {"v": CACHE_VERSION, "torch": torch.__version__.split("+")[0], **identity},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


class TrunkCache:
    """Per-image trunk outputs of the pools of one dataset, for one trunk.

    Args:
        root: Cache folder (``None``: compute every time, store nothing).
        key: :func:`trunk_key` of the trunk.
        batch_size: Images per forward pass when computing.
    """

    def __init__(self, root: str | Path | None, key: str, batch_size: int = 256) -> None:
        self.dir = Path(root) / "trunk" / key if root else None
        self.key = key
        self.batch_size = int(batch_size)
        self.computed = 0  # images computed (not read from the cache) by this object
        self.reused = 0
        self._known: dict[tuple[str, str], dict[int, Tensor]] = {}  # shards read, per pool+view

    def outputs_of(
        self,
        pool_key: str,
        indices: np.ndarray,
        images: Tensor,
        compute: Callable[[Tensor], Tensor],
        altered: Tensor | None = None,
    ) -> Tensor:
        """:meth:`outputs`, but the ``altered`` images are computed and never cached.

        Altered images (synthetic validation anomalies) are held by no pool row.
        """
        if altered is None or not bool(altered.any()):
            return self.outputs(pool_key, indices, images, compute)
        keep = ~altered
        plain = self.outputs(pool_key, np.asarray(indices)[keep.numpy()], images[keep], compute)
        out = torch.zeros((len(images), *plain.shape[1:]), dtype=plain.dtype)
        out[keep] = plain
        out[altered] = self._compute(images[altered], compute, flip=False).to(plain.dtype)
        return out

    def outputs(
        self,
        pool_key: str,
        indices: np.ndarray,
        images: Tensor,
        compute: Callable[[Tensor], Tensor],
        view: str = "plain",
    ) -> Tensor:
        """Trunk outputs of ``images`` (pool rows ``indices``), from the cache where it has them.

        Args:
            pool_key: The decoded pool the images come from.
            indices: ``[N]`` row of each image in that pool (its identity in the cache).
            images: ``[N, C, H, W]`` the images themselves (computed when missing).
            compute: Trunk of a batch of (uint8) images.
            view: ``plain`` or ``hflip`` (the trunk sees the mirrored images).
        """
        if view not in VIEWS:
            raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
        indices = np.asarray(indices, dtype=np.int64)
        if len(indices) != len(images):
            raise ValueError("indices and images differ in length")
        folder = self.dir / pool_key / view if self.dir else None
        if (pool_key, view) not in self._known:  # each folder is looked at once per object
            self._known[(pool_key, view)] = _load_shards(folder) if folder else {}
        known = self._known[(pool_key, view)]
        missing = np.array(sorted({int(i) for i in indices} - set(known)), dtype=np.int64)
        if len(missing):
            position = {int(i): p for p, i in enumerate(indices)}
            rows = torch.as_tensor([position[int(i)] for i in missing])
            new = self._compute(images[rows], compute, flip=view == "hflip")
            if folder is not None:
                _write_shard(folder, missing, new)
            known.update({int(i): new[p] for p, i in enumerate(missing)})
        self.computed += len(missing)
        self.reused += len(indices) - len(missing)
        return torch.stack([known[int(i)] for i in indices]) if len(indices) else torch.empty(0)

    def _compute(self, images: Tensor, compute: Callable[[Tensor], Tensor], flip: bool) -> Tensor:
        out = []
        with torch.inference_mode():
            for start in range(0, len(images), self.batch_size):
                batch = images[start : start + self.batch_size]
                out.append(compute(batch.flip(-1) if flip else batch).float().contiguous())
        return torch.cat(out).cpu()


def _load_shards(folder: Path) -> dict[int, Tensor]:
    """The outputs the folder's shards hold; shards this process read before are not re-read."""
    read, known = _kept(folder)
    if not folder.is_dir():
        return known
    for shard in sorted(folder.glob("*.pt")):
        if shard.name in read:
            continue
        read.add(shard.name)
        blob = _verified(shard)
        if blob is None:
            continue
        for i, row in zip(blob["indices"].tolist(), blob["outputs"], strict=True):
            known[int(i)] = row
    return known


def _verified(shard: Path) -> dict[str, Tensor] | None:
    """A shard's contents when it loads and matches its checksum; else removed, with a warning.

    Outputs changed in place would move every later run's metrics (or make them diverge):
    such a shard is dropped and its images recomputed.
    """
    try:
        blob = torch.load(shard, weights_only=True)
        sealed = blob.get("checksum")
        if sealed is not None and sealed == checksum(blob["indices"], blob["outputs"]):
            return blob
        why = "its checksum does not match" if sealed else "it has no checksum (older adabench)"
    except Exception as err:  # noqa: BLE001 - an unreadable shard is dropped and recomputed
        why = f"it does not load ({type(err).__name__})"
    say(f"[adabench] warning: trunk-cache shard {shard} recomputed: {why}.", err=True)
    shard.unlink(missing_ok=True)
    return None


def _write_shard(folder: Path, indices: np.ndarray, outputs: Tensor) -> None:
    index = torch.from_numpy(indices)
    outputs = outputs.contiguous()
    blob = {"indices": index, "outputs": outputs, "checksum": checksum(index, outputs)}
    name = f"{uuid.uuid4().hex}.pt"
    if write_cache(folder / name, lambda tmp: torch.save(blob, tmp), folder.parent.parent):
        _kept(folder)[0].add(name)  # its outputs are in memory already
