"""What the runs of one process share: folder listings, decoded pools, trunk-output shards.

A sweep's runs and a study's trials run in one process; each used to re-list 60 000 files,
re-read a 1.7 GB pool cache and every trunk shard. Each is now read once per process, and
re-read when it changes.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from adabench import trunk_cache
from adabench.data import folder, pools
from adabench.data.images import ImagePool
from adabench.data.sources import ImageSource
from adabench.files import checksum
from adabench.trunk_cache import TrunkCache


def test_a_folder_listing_is_read_again_only_when_a_file_is_added_or_removed(tmp_path, monkeypatch):
    for name in ("a/1.png", "a/2.png", "b/3.png"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    listings = []
    real = folder.files_below
    monkeypatch.setattr(folder, "files_below", lambda root: listings.append(root) or real(root))
    first = folder.listing_fingerprint(tmp_path)
    assert folder.listing_fingerprint(tmp_path) == first and len(listings) == 1
    (tmp_path / "b" / "4.png").write_bytes(b"y")
    added = folder.listing_fingerprint(tmp_path)
    assert added != first and len(listings) == 2
    (tmp_path / "a" / "1.png").rename(tmp_path / "a" / "5.png")
    assert folder.listing_fingerprint(tmp_path) not in (first, added) and len(listings) == 3


class CountingSource(ImageSource):
    """Eight random images per split; counts how often it decodes."""

    def __init__(self) -> None:
        super().__init__(image_size=8, channels=1)
        self.decoded = 0

    def identity(self, split: str) -> dict:
        return {"name": "counting"}

    def load(self, split: str) -> ImagePool:
        self.decoded += 1
        images = torch.randint(0, 255, (8, 1, 8, 8), dtype=torch.uint8)
        return ImagePool(images, torch.arange(8) % 2, ["a", "b"], [], None, None)


def test_a_pool_is_read_from_its_cache_file_once_per_process(tmp_path, monkeypatch):
    source = CountingSource()
    first = pools.load_pool("train", source, tmp_path)
    assert source.decoded == 1 and list(tmp_path.glob("pool-train-*.pt"))

    def no_read(*args, **kwargs):
        raise AssertionError("the cache file was read again")

    monkeypatch.setattr(torch, "load", no_read)
    again = pools.load_pool("train", source, tmp_path)
    assert source.decoded == 1 and torch.equal(again.images, first.images)
    monkeypatch.undo()
    pools.load_pool("test", source, tmp_path)  # the train and test pools of one dataset stay
    pools.load_pool("other", source, tmp_path)  # a third pool pushes out the oldest
    assert len(pools._KEPT) == pools.KEPT_IN_MEMORY
    read = []
    monkeypatch.setattr(
        torch, "load", lambda *a, **k: read.append(a) or torch.serialization.load(*a, **k)
    )
    again = pools.load_pool("train", source, tmp_path)
    assert len(read) == 1 and torch.equal(again.images, first.images)  # from its file, exactly


def test_trunk_shards_are_read_once_per_process_and_new_shards_are_picked_up(tmp_path, monkeypatch):
    images = torch.randint(0, 255, (6, 1, 4, 4), dtype=torch.uint8)
    trunk = lambda x: x.float().mean(dim=(2, 3))  # noqa: E731 - a stand-in trunk
    first = TrunkCache(tmp_path, "k").outputs("pool", np.arange(3), images[:3], trunk)
    reads = []
    real = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: reads.append(a[0]) or real(*a, **k))
    second = TrunkCache(tmp_path, "k")  # the next run of the sweep: nothing is re-read
    torch.testing.assert_close(second.outputs("pool", np.arange(3), images[:3], trunk), first)
    assert reads == [] and second.computed == 0 and second.reused == 3
    # another process writes a shard for rows 3..5: this process reads that shard only
    other = tmp_path / "trunk" / "k" / "pool" / "plain" / "other.pt"
    rows, outputs = torch.arange(3, 6), trunk(images[3:])
    torch.save({"indices": rows, "outputs": outputs, "checksum": checksum(rows, outputs)}, other)
    third = TrunkCache(tmp_path, "k")
    out = third.outputs("pool", np.arange(6), images, trunk)
    assert reads == [other] and third.computed == 0
    torch.testing.assert_close(out, trunk(images))


@pytest.fixture(autouse=True)
def fresh_process_memory():
    """Each test starts as a fresh process would."""
    pools._KEPT.clear()
    trunk_cache._READ.clear()
    folder._FINGERPRINTS.clear()
    yield
    pools._KEPT.clear()
    trunk_cache._READ.clear()
    folder._FINGERPRINTS.clear()
