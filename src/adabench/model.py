"""Backbone (any timm model) + embedding neck: images in, embeddings out (pure torch)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from adabench.errors import ConfigError, DataError, choices_hint


def create_backbone(
    name: str, in_chans: int, pretrained: bool = False, checkpoint_path: str | None = None
) -> nn.Module:
    """A timm model without its classifier (``num_classes=0``: pooled features out).

    Raises:
        ConfigError: unknown model name (with close matches from ``timm.list_models``).
        DataError: pretrained weights could not be downloaded or read.
    """
    import timm

    if not timm.is_model(name):
        hint = choices_hint(name, timm.list_models(), n=6)
        raise ConfigError(
            f"Unknown timm backbone '{name}'.{hint or ''} See timm.list_models() for all "
            f"{len(timm.list_models())} names, e.g. mobilenetv2_050, resnet18, efficientnet_b0."
        )
    kwargs: dict = {"num_classes": 0, "in_chans": in_chans}
    if checkpoint_path:
        kwargs["pretrained_cfg_overlay"] = {"file": str(checkpoint_path)}
    try:
        return timm.create_model(name, pretrained=pretrained or bool(checkpoint_path), **kwargs)
    except Exception as err:
        if not (pretrained or checkpoint_path):
            raise
        raise DataError(
            f"Could not load pretrained weights for '{name}' ({type(err).__name__}: {err}). "
            "Downloading needs internet access to the Hugging Face Hub. Offline: put the weights "
            "in the HF cache (HF_HOME) beforehand, pass backbone.checkpoint_path=/path/to/weights, "
            "or train from scratch with backbone.pretrained=false."
        ) from err


class Embedder(nn.Module):
    """Normalise inputs, run the backbone, project to ``embedding_dim`` (Linear + BatchNorm).

    Args:
        backbone: Feature extractor returning ``[N, F]`` pooled features.
        embedding_dim: Output size.
        mean: Per-channel mean of inputs in [0, 1].
        std: Per-channel std of inputs in [0, 1].
        channels_last: Run the backbone in channels-last memory format (on CPU 1.8x faster for
            MobileNetV2, 4.4x for EfficientNet-B0, no gain for ResNet-18: docs/benchmarks.md).
    """

    def __init__(
        self,
        backbone: nn.Module,
        embedding_dim: int,
        mean: Sequence[float],
        std: Sequence[float],
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        if int(embedding_dim) <= 0:
            raise ConfigError(
                f"backbone.embedding_dim must be a positive integer, got {embedding_dim}."
            )
        self.backbone = backbone
        features = int(getattr(backbone, "num_features", 0)) or self._probe_features(len(mean))
        self.neck = nn.Sequential(
            nn.Linear(features, int(embedding_dim)), nn.BatchNorm1d(int(embedding_dim))
        )
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))
        self.channels_last = bool(channels_last)
        if self.channels_last:
            self.backbone.to(memory_format=torch.channels_last)

    def _probe_features(self, channels: int) -> int:
        with torch.no_grad():
            return int(self.backbone(torch.zeros(2, channels, 32, 32)).shape[1])

    def features(self, images: Tensor) -> Tensor:
        """The backbone's pooled features (before the neck); ``uint8`` images are scaled first."""
        x = images.float().div_(255.0) if images.dtype == torch.uint8 else images
        x = (x - self.mean) / self.std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.backbone(x)

    def forward(self, images: Tensor) -> Tensor:
        """Embed a batch; ``uint8`` images are scaled to [0, 1] first."""
        return self.neck(self.features(images))
