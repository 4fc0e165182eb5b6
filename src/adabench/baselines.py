"""No-training baselines: the same split, scorer and metrics on raw pixels or backbone features.

A benchmark's ranking is only worth reading next to what needs no training at all:

- ``pixels``: every image as a vector of its pixel values in [0, 1] (the dataset's
  ``image_size`` and ``channels``);
- ``features``: the backbone's pooled features as configured (pretrained weights, early exit
  ``out_stage``), no neck: the survey's "k-NN on pretrained features" method; with a backbone
  trained from scratch these are random features.

They are chosen as losses (``loss=baseline_pixels``, ``loss=baseline_features``), so a sweep
and its report put them beside the trained rows; a new baseline is a :class:`Baseline` subclass
and a YAML file in ``conf/loss`` naming it.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor


class Baseline:
    """A no-training row of the loss group: vectors of the images, scored like embeddings.

    Attributes:
        kind: Its short name in metrics.json (``baseline``) and the report.
        needs_embedder: Whether :meth:`vectors` reads the backbone (``features``) or only the
            images (``pixels``).
    """

    kind = ""
    needs_embedder = True

    def vectors(
        self, embedder: torch.nn.Module | None, batches: Iterable[Tensor], trunk_outputs: bool
    ) -> Tensor:
        """``[N, D]`` float32 vectors of the images in ``batches``."""
        raise NotImplementedError


class PixelBaseline(Baseline):
    """Raw pixels: every image as a vector of its values in [0, 1]."""

    kind = "pixels"
    needs_embedder = False

    def vectors(
        self, embedder: torch.nn.Module | None, batches: Iterable[Tensor], trunk_outputs: bool
    ) -> Tensor:
        """Pixel vectors of each batch (the embedder is not used)."""
        return torch.cat([pixel_vectors(b) for b in batches])


class FeatureBaseline(Baseline):
    """The backbone's pooled features as configured, no neck (k-NN on pretrained features)."""

    kind = "features"

    def vectors(
        self, embedder: torch.nn.Module | None, batches: Iterable[Tensor], trunk_outputs: bool
    ) -> Tensor:
        """Pooled backbone features of each batch."""
        assert embedder is not None, "the features baseline needs the embedder"
        return feature_vectors(embedder, batches, trunk_outputs)


def pixel_vectors(images: Tensor) -> Tensor:
    """``[N, C·H·W]`` float32 pixel values in [0, 1] of uint8 (or [0, 1] float) images."""
    x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
    return x.flatten(1)  # trace-safe (an exported detector takes any batch size)


@torch.inference_mode()
def feature_vectors(
    embedder: torch.nn.Module, batches: Iterable[Tensor], trunk_outputs: bool
) -> Tensor:
    """The embedder's pooled backbone features (before the neck) of each batch, in eval mode.

    Args:
        embedder: An :class:`adabench.embedder.Embedder`.
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
