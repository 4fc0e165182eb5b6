"""Loss heads, one class per paper, and a registry that builds them by name."""

from __future__ import annotations

from functools import partial
from typing import Any

from adabench.errors import ConfigError, choices_hint
from adabench.losses.adacos import AdaCosHead, adacos_fixed_scale
from adabench.losses.base import ClassificationHead, CosineHead
from adabench.losses.margins import ArcFaceHead, CosFaceHead, SphereFaceHead
from adabench.losses.softmax import L2SoftmaxHead, SoftmaxHead

HEADS: dict[str, Any] = {
    "softmax": SoftmaxHead,
    "l2softmax": L2SoftmaxHead,
    "arcface": ArcFaceHead,
    "cosface": CosFaceHead,
    "sphereface": SphereFaceHead,
    "adacos_fixed": partial(AdaCosHead, dynamic=False),
    "adacos_dynamic": partial(AdaCosHead, dynamic=True),
}


def build_head(
    name: str, embedding_dim: int, num_classes: int, **params: Any
) -> ClassificationHead:
    """Build the loss head registered as ``name``.

    Raises:
        ConfigError: unknown name or parameter; the message lists the valid choices.
    """
    if name not in HEADS:
        raise ConfigError(
            f"Unknown loss '{name}'. Valid choices: {', '.join(HEADS)}.{choices_hint(name, HEADS)}"
        )
    try:
        return HEADS[name](embedding_dim, num_classes, **params)
    except TypeError as err:
        raise ConfigError(f"Bad parameter for loss '{name}': {err}") from err


__all__ = [
    "HEADS",
    "AdaCosHead",
    "ArcFaceHead",
    "ClassificationHead",
    "CosFaceHead",
    "CosineHead",
    "L2SoftmaxHead",
    "SoftmaxHead",
    "SphereFaceHead",
    "adacos_fixed_scale",
    "build_head",
]
