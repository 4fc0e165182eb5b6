"""Embedder: input normalisation, (frozen trunk +) backbone, embedding neck (pure torch)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from adabench.errors import ConfigError


class Embedder(nn.Module):
    """Normalise inputs, run the (trunk and) backbone, project to ``embedding_dim``.

    ``embedding = neck(backbone(trunk(normalise(images))))``; the neck is Linear + BatchNorm.

    Args:
        backbone: The trainable feature extractor returning ``[N, F]`` pooled features (with
            a trunk: the part after it).
        embedding_dim: Output size.
        mean: Per-channel mean of inputs in [0, 1].
        std: Per-channel std of inputs in [0, 1].
        channels_last: Run the convolutions in channels-last memory format (on CPU 1.8x faster
            for MobileNetV2, 4.4x for EfficientNet-B0, no gain for ResNet-18: docs/benchmarks.md).
        trunk: Frozen first part of the backbone (``None``: none). It stays in eval mode (its
            BatchNorm statistics never change) and gets no gradient, so its outputs can be
            computed once and cached (:mod:`adabench.trunk_cache`).
        num_features: Size of ``backbone``'s output (probed when not given).
    """

    def __init__(
        self,
        backbone: nn.Module,
        embedding_dim: int,
        mean: Sequence[float],
        std: Sequence[float],
        channels_last: bool = False,
        trunk: nn.Module | None = None,
        num_features: int | None = None,
    ) -> None:
        super().__init__()
        if int(embedding_dim) <= 0:
            raise ConfigError(
                f"backbone.embedding_dim must be a positive integer, got {embedding_dim}."
            )
        self.trunk = trunk
        self.backbone = backbone
        if self.trunk is not None:
            self.trunk.requires_grad_(False)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))
        self.channels_last = bool(channels_last)
        if self.channels_last:
            for part in (self.trunk, self.backbone):
                if part is not None:
                    part.to(memory_format=torch.channels_last)
        features = int(num_features or getattr(backbone, "num_features", 0) or self._probe())
        self.num_features = features
        self.embedding_dim = int(embedding_dim)
        self.neck = nn.Sequential(
            nn.Linear(features, self.embedding_dim), nn.BatchNorm1d(self.embedding_dim)
        )
        self.train()

    def _probe(self) -> int:
        was = self.training
        self.eval()
        try:
            with torch.no_grad():
                x = torch.zeros(2, self.mean.shape[1], 32, 32)
                return int(self.features(x).shape[1])
        finally:
            self.train(was)

    def train(self, mode: bool = True) -> Embedder:
        """Set train/eval mode; the frozen trunk always stays in eval mode."""
        super().train(mode)
        if self.trunk is not None:
            self.trunk.eval()
        return self

    def normalise(self, images: Tensor) -> Tensor:
        """``uint8`` images scaled to [0, 1], then normalised with ``mean``/``std``."""
        x = images.float().div_(255.0) if images.dtype == torch.uint8 else images
        x = (x - self.mean) / self.std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def trunk_outputs(self, images: Tensor) -> Tensor:
        """What the frozen trunk computes for ``images`` (the normalised images if none)."""
        x = self.normalise(images)
        if self.trunk is None:
            return x
        with torch.no_grad():
            return self.trunk(x)

    def from_trunk(self, trunk_outputs: Tensor) -> Tensor:
        """Pooled backbone features from trunk outputs."""
        x = trunk_outputs
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.backbone(x)

    def features(self, images: Tensor) -> Tensor:
        """The backbone's pooled features (before the neck)."""
        return self.from_trunk(self.trunk_outputs(images))

    def forward(self, images: Tensor) -> Tensor:
        """Embed a batch of images (``uint8`` or float in [0, 1])."""
        return self.neck(self.features(images))

    def embed_trunk_outputs(self, trunk_outputs: Tensor) -> Tensor:
        """Embed cached trunk outputs (the same as ``forward`` on the images they came from)."""
        return self.neck(self.from_trunk(trunk_outputs))
