"""Plain softmax cross-entropy and the L2-constrained softmax."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from adabench.errors import ConfigError
from adabench.losses.base import ClassificationHead


class SoftmaxHead(ClassificationHead):
    """Fully connected layer + softmax cross-entropy: the baseline every loss is compared with."""

    def __init__(self, embedding_dim: int, num_classes: int) -> None:
        super().__init__(embedding_dim, num_classes)
        self.fc = nn.Linear(self.embedding_dim, self.num_classes)

    def logits(self, embeddings: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.fc(embeddings)


class L2SoftmaxHead(ClassificationHead):
    """L2-constrained softmax: features are L2-normalised and scaled to norm α before the FC layer.

    Ranjan, Castillo & Chellappa, "L2-constrained Softmax Loss for Discriminative Face
    Verification", arXiv:1703.09507 (2017): ``logits = W (α x / ||x||) + b``. The paper gives the
    lower bound α ≥ log(p (C − 2) / (1 − p)) for a target probability p and reports α = 16 as a
    good fixed value, the default here.

    Args:
        embedding_dim: Size of the input embeddings.
        num_classes: Number of training classes.
        alpha: Norm the features are scaled to.
    """

    def __init__(self, embedding_dim: int, num_classes: int, alpha: float = 16.0) -> None:
        super().__init__(embedding_dim, num_classes)
        if not alpha > 0:
            raise ConfigError(f"loss.alpha must be > 0, got {alpha}.")
        self.alpha = float(alpha)
        self.fc = nn.Linear(self.embedding_dim, self.num_classes)

    def logits(self, embeddings: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.fc(self.alpha * F.normalize(embeddings, dim=1))
