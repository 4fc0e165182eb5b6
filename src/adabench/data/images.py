"""A decoded image pool (uint8 ``[N, C, H, W]`` + labels + class names) and how to size it."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from adabench.errors import ConfigError, DataError


@dataclass
class ImagePool:
    """Decoded images of one dataset split.

    Attributes:
        images: ``uint8`` tensor ``[N, C, H, W]``.
        labels: ``int64`` tensor ``[N]`` of class indices into ``classes``.
        classes: Class names, by index.
        skipped: Files that could not be read and were skipped (``on_corrupt: skip``).
        key: Its :func:`cache_key` (the pool's identity in caches), when it was computed.
        ids: Each image's identity in its source (a file path relative to the folder), or
            ``None`` when the row index is the identity (torchvision, digits).
    """

    images: Tensor
    labels: Tensor
    classes: list[str]
    skipped: list[str] = field(default_factory=list)
    key: str | None = None
    ids: list[str] | None = None

    def __len__(self) -> int:
        return len(self.labels)


def fit_images(images: Tensor, size: int, channels: int) -> Tensor:
    """Resize a uint8 ``[N, C, H, W]`` batch to ``size``×``size`` and ``channels`` channels."""
    if channels not in (1, 3):
        raise ConfigError(f"dataset.channels must be 1 or 3, got {channels}.")
    if images.shape[1] != channels:
        if channels == 3:
            images = images.expand(-1, 3, -1, -1)
        else:
            weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
            images = (images.float() * weights).sum(1, keepdim=True).round().to(torch.uint8)
    if images.shape[-2:] != (size, size):
        chunks = []
        for chunk in images.split(4096):
            out = F.interpolate(chunk.float(), size=(size, size), mode="bilinear", antialias=True)
            chunks.append(out.round().clamp(0, 255).to(torch.uint8))
        images = torch.cat(chunks)
    return images.contiguous()


def align_classes(train: ImagePool, test: ImagePool) -> ImagePool:
    """Express the test pool's labels in the train pool's class indices."""
    if test.classes == train.classes:
        return test
    extra = sorted(set(test.classes) - set(train.classes))
    if extra:
        raise DataError(
            f"Test classes {extra} have no train folder; train classes are {train.classes}."
        )
    lut = torch.tensor([train.classes.index(c) for c in test.classes])
    return ImagePool(
        test.images, lut[test.labels], list(train.classes), test.skipped, test.key, test.ids
    )


def channel_stats(images: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and (unbiased) std of uint8 ``[N, C, H, W]`` images scaled to [0, 1]."""
    x = images.float().div_(255.0)
    return x.mean(dim=(0, 2, 3)).tolist(), x.std(dim=(0, 2, 3)).clamp_min(1e-3).tolist()
