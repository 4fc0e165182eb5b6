"""Batched augmentation on tensors already on the device (no per-sample PIL transforms)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def random_pad_crop(images: Tensor, pad: int, generator: torch.Generator | None = None) -> Tensor:
    """Pad each image by ``pad`` pixels (reflect) and crop back at a random offset per image.

    Args:
        images: ``[N, C, H, W]`` batch (any dtype).
        pad: Padding on each side; 0 returns the input.
        generator: Random generator for the offsets.
    """
    if pad <= 0:
        return images
    n, c, h, w = images.shape
    mode = "reflect" if pad < min(h, w) else "replicate"
    padded = F.pad(
        images.float() if not images.is_floating_point() else images, [pad] * 4, mode=mode
    )
    dev = images.device
    oy = torch.randint(0, 2 * pad + 1, (n, 1), generator=generator, device="cpu").to(dev)
    ox = torch.randint(0, 2 * pad + 1, (n, 1), generator=generator, device="cpu").to(dev)
    rows = (oy + torch.arange(h, device=dev)).view(n, 1, h, 1).expand(n, c, h, w + 2 * pad)
    out = padded.gather(2, rows)
    cols = (ox + torch.arange(w, device=dev)).view(n, 1, 1, w).expand(n, c, h, w)
    out = out.gather(3, cols)
    return out.to(images.dtype)


def random_hflip(
    images: Tensor, p: float = 0.5, generator: torch.Generator | None = None
) -> Tensor:
    """Mirror each image left-right with probability ``p``."""
    if p <= 0:
        return images
    flip = torch.rand(images.shape[0], generator=generator, device="cpu").to(images.device) < p
    return torch.where(flip.view(-1, 1, 1, 1), images.flip(-1), images)


def augment_batch(
    images: Tensor, pad: int = 0, hflip: bool = False, generator: torch.Generator | None = None
) -> Tensor:
    """Pad-and-crop then optional horizontal flip, on a whole batch."""
    images = random_pad_crop(images, pad, generator)
    return random_hflip(images, 0.5, generator) if hflip else images


def random_jitter(
    images: Tensor,
    brightness: float = 0.0,
    contrast: float = 0.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Jitter each image's brightness and contrast; uint8 in, uint8 out (clamped).

    Brightness is scaled by U(1 − b, 1 + b), contrast around the image's mean by U(1 − c, 1 + c).
    """
    if brightness <= 0 and contrast <= 0:
        return images
    n = images.shape[0]
    x = images.float()

    def factor(amount: float) -> Tensor:
        u = torch.rand(n, generator=generator, device="cpu").to(images.device)
        return (1 + amount * (2 * u - 1)).view(n, 1, 1, 1)

    if contrast > 0:
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = mean + (x - mean) * factor(contrast)
    if brightness > 0:
        x = x * factor(brightness)
    return x.round().clamp(0, 255).to(images.dtype) if not images.is_floating_point() else x


def two_views(
    images: Tensor, augment: dict, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """Two independently augmented views of each image (SimCLR-style training).

    Args:
        images: ``[N, C, H, W]`` batch.
        augment: ``pad_crop`` (pixels), ``hflip`` (bool), ``brightness``, ``contrast``
            (jitter amounts in [0, 1)).
        generator: Random generator.
    """

    def view() -> Tensor:
        x = augment_batch(
            images, int(augment.get("pad_crop", 0)), bool(augment.get("hflip")), generator
        )
        return random_jitter(
            x, float(augment.get("brightness", 0)), float(augment.get("contrast", 0)), generator
        )

    return view(), view()
