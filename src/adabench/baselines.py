"""No-training baselines: the same split, scorer and metrics on raw pixels or backbone features.

A benchmark's ranking is only worth reading next to what needs no training at all:

- ``pixels``: every image as a vector of its pixel values in [0, 1] (the dataset's
  ``image_size`` and ``channels``);
- ``features``: the backbone's pooled features as configured (pretrained weights, early exit
  ``out_stage``), no neck: the survey's "k-NN on pretrained features" method; with a backbone
  trained from scratch these are random features.

They are chosen as losses (``loss=baseline_pixels``, ``loss=baseline_features``), so a sweep
and its report put them beside the trained rows.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

from adabench.errors import ConfigError

BASELINES = ("pixels", "features")


def check_baseline(kind: str) -> None:
    """Raise :class:`ConfigError` unless ``kind`` is a known baseline."""
    if kind not in BASELINES:
        raise ConfigError(
            f"Unknown baseline '{kind}'. Valid choices: {', '.join(BASELINES)} "
            "(loss=baseline_pixels or loss=baseline_features)."
        )


def pixel_vectors(images: Tensor) -> Tensor:
    """``[N, C·H·W]`` float32 pixel values in [0, 1] of uint8 (or [0, 1] float) images."""
    x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
    return x.reshape(len(x), -1)


@torch.inference_mode()
def feature_vectors(
    embedder: torch.nn.Module, batches: Iterable[Tensor], trunk_outputs: bool
) -> Tensor:
    """The embedder's pooled backbone features (before the neck) of each batch, in eval mode.

    Args:
        embedder: An :class:`adabench.model.Embedder`.
        batches: Image batches, or trunk-output batches when ``trunk_outputs``.
        trunk_outputs: The batches hold the frozen trunk's (cached) outputs.
    """
    was = embedder.training
    embedder.eval()
    try:
        fn = embedder.from_trunk if trunk_outputs else embedder.features
        return torch.cat([fn(b).float() for b in batches])
    finally:
        embedder.train(was)
