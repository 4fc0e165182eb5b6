"""What every classification head shares: validation, the loss, and cosine logits."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from adabench.errors import ConfigError

_EPS = 1e-7


class ClassificationHead(nn.Module, ABC):
    """A loss head: owns the class weights and turns embeddings into logits and a loss.

    ``logits(x, labels)`` applies the head's margin (if any) to the target class and is what the
    training loss uses; ``logits(x)`` has no margin and is what prediction uses.

    Args:
        embedding_dim: Size of the input embeddings.
        num_classes: Number of training classes.
    """

    min_classes: int = 2

    def __init__(self, embedding_dim: int, num_classes: int) -> None:
        super().__init__()
        if int(embedding_dim) <= 0:
            raise ConfigError(f"embedding_dim must be a positive integer, got {embedding_dim}.")
        if int(num_classes) < self.min_classes:
            raise ConfigError(
                f"{type(self).__name__} needs at least {self.min_classes} training classes, "
                f"got num_classes={num_classes}; add reference classes (dataset.reference)."
            )
        self.embedding_dim = int(embedding_dim)
        self.num_classes = int(num_classes)

    @abstractmethod
    def logits(self, embeddings: Tensor, labels: Tensor | None = None) -> Tensor:
        """Class logits ``[N, C]``; the margin is applied to ``labels`` when they are given."""

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        """Mean cross-entropy of the (margin-adjusted) logits."""
        return F.cross_entropy(self.logits(embeddings, labels), labels)

    def extra_repr(self) -> str:
        return f"embedding_dim={self.embedding_dim}, num_classes={self.num_classes}"


class CosineHead(ClassificationHead):
    """Base for heads on normalised class weights: logits are functions of cos(θ)."""

    def __init__(self, embedding_dim: int, num_classes: int) -> None:
        super().__init__(embedding_dim, num_classes)
        self.weight = nn.Parameter(torch.empty(self.num_classes, self.embedding_dim))
        nn.init.xavier_uniform_(self.weight)

    def cosine(self, embeddings: Tensor) -> Tensor:
        """Cos θ between each embedding and each class weight, ``[N, C]``."""
        return F.linear(F.normalize(embeddings, dim=1), F.normalize(self.weight, dim=1))

    @staticmethod
    def angles(cosine: Tensor) -> Tensor:
        """θ = arccos(cos θ), clamped away from ±1 so the gradient stays finite."""
        return torch.acos(cosine.clamp(-1 + _EPS, 1 - _EPS))

    @staticmethod
    def with_target(logits: Tensor, labels: Tensor, target_values: Tensor) -> Tensor:
        """Return ``logits`` with the target column of each row replaced by ``target_values``."""
        mask = F.one_hot(labels, logits.shape[1]).to(torch.bool)
        return torch.where(mask, target_values.unsqueeze(1).to(logits.dtype), logits)

    @staticmethod
    def target_of(values: Tensor, labels: Tensor) -> Tensor:
        """The target column of each row, ``[N]``."""
        return values.gather(1, labels.unsqueeze(1)).squeeze(1)
