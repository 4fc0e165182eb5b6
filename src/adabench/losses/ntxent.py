"""NT-Xent, the normalised temperature-scaled cross-entropy of SimCLR.

Chen, Kornblith, Norouzi & Hinton 2020, "A Simple Framework for Contrastive Learning of Visual
Representations" (arXiv:2002.05709), Eq. 1: for a batch of N images seen in two augmented views
(2N embeddings), the positive of each view is the other view of its image and the 2N − 2 other
views are its negatives; ℓ(i, j) = −log(exp(sim(z_i, z_j)/τ) / Σ_{k≠i} exp(sim(z_i, z_k)/τ)),
averaged over all 2N views, with sim the cosine similarity. No labels.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from adabench.errors import ConfigError
from adabench.losses.base import ClassificationHead

TRAIN_ON = ("normal", "all")


def nt_xent(z1: Tensor, z2: Tensor, temperature: float = 0.5) -> Tensor:
    """NT-Xent of the views ``z1[i]`` / ``z2[i]`` of N images (``[N, D]`` each).

    Raises:
        ConfigError: ``temperature`` is not positive, or the two views differ in shape.
    """
    if not temperature > 0:
        raise ConfigError(f"loss.temperature must be > 0, got {temperature}.")
    if z1.shape != z2.shape or z1.dim() != 2 or len(z1) < 2:
        raise ConfigError(
            f"NT-Xent needs two views [N, D] of at least 2 images, got {tuple(z1.shape)} and "
            f"{tuple(z2.shape)}."
        )
    n = len(z1)
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sim = z @ z.T / temperature
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    positives = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(sim, positives)


class NTXentHead(ClassificationHead):
    """Self-supervised contrastive training (SimCLR): no labels, two augmented views per image.

    The DataModule hands the module two views of each training image (``augment``); their
    embeddings are pulled together and pushed from every other view by :func:`nt_xent`. Works
    under ``protocol=one_vs_rest`` (one class is enough) and ``protocol=anomaly``.

    Args:
        embedding_dim: Size of the embeddings.
        num_classes: Training classes (unused: no labels; any number ≥ 1).
        temperature: τ (SimCLR's default for large batches is 0.1–0.5).
        train_on: ``normal`` (the normal training images only: one-class) or ``all``
            (reference + normal).
        augment: The views' augmentation: ``pad_crop``, ``hflip``, ``brightness``,
            ``contrast`` (:func:`adabench.data.augment.two_views`).
    """

    min_classes = 1
    views = 2
    DEFAULT_AUGMENT = {"pad_crop": 4, "hflip": True, "brightness": 0.4, "contrast": 0.4}

    @classmethod
    def data_needs(cls, params: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """What the DataModule serves: the two views' augmentation; normal images alone or not.

        Read from the loss config before anything is built, so the DataModule is built once.
        """
        normal_only = params.get("train_on", "normal") == "normal"
        return dict(params.get("augment") or cls.DEFAULT_AUGMENT), normal_only

    def __init__(
        self,
        embedding_dim: int,
        num_classes: int,
        temperature: float = 0.5,
        train_on: str = "normal",
        augment: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(embedding_dim, num_classes)
        if not temperature > 0:
            raise ConfigError(f"loss.temperature must be > 0, got {temperature}.")
        if train_on not in TRAIN_ON:
            raise ConfigError(
                f"loss.train_on must be one of {', '.join(TRAIN_ON)}, got {train_on!r}."
            )
        self.temperature, self.train_on = float(temperature), train_on
        self.augment = dict(augment or self.DEFAULT_AUGMENT)

    def pair_loss(self, z1: Tensor, z2: Tensor) -> Tensor:
        """NT-Xent of the two views' embeddings."""
        return nt_xent(z1, z2, self.temperature)

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        """Not used for training (see :meth:`pair_loss`); the loss of a batch against itself."""
        return self.pair_loss(embeddings, embeddings)

    def logits(self, embeddings: Tensor, labels: Tensor | None = None) -> None:
        """No classes: ``None``."""
        return None
