"""Additive and multiplicative angular-margin heads: ArcFace, CosFace, SphereFace."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from adabench.errors import ConfigError
from adabench.losses.base import CosineHead


class ArcFaceHead(CosineHead):
    """ArcFace: additive angular margin, ``s · cos(θ_y + m)`` for the target class.

    Deng, Guo, Xue & Zafeiriou, "ArcFace: Additive Angular Margin Loss for Deep Face
    Recognition", CVPR 2019 (arXiv:1801.07698). Defaults s = 64, m = 0.5 rad as in the paper.
    Where θ_y + m would pass π the target logit becomes ``cos θ_y − m·sin m`` so that it keeps
    decreasing in θ (the reference implementation's rule, also used by pytorch-metric-learning).

    Args:
        embedding_dim: Size of the input embeddings.
        num_classes: Number of training classes.
        scale: The scale s.
        margin: The additive angular margin m, in radians.
    """

    def __init__(
        self, embedding_dim: int, num_classes: int, scale: float = 64.0, margin: float = 0.5
    ) -> None:
        super().__init__(embedding_dim, num_classes)
        if not scale > 0:
            raise ConfigError(f"loss.scale must be > 0, got {scale}.")
        if not 0 <= margin < math.pi / 2:
            raise ConfigError(f"loss.margin must be in [0, π/2) radians, got {margin}.")
        self.scale, self.margin = float(scale), float(margin)

    def logits(self, embeddings: Tensor, labels: Tensor | None = None) -> Tensor:
        cos = self.cosine(embeddings)
        if labels is not None:
            theta = self.angles(self.target_of(cos, labels))
            m = self.margin
            target = torch.where(
                theta <= math.pi - m, torch.cos(theta + m), torch.cos(theta) - m * math.sin(m)
            )
            cos = self.with_target(cos, labels, target)
        return self.scale * cos


class CosFaceHead(CosineHead):
    """CosFace (large margin cosine loss): ``s · (cos θ_y − m)`` for the target class.

    Wang et al., "CosFace: Large Margin Cosine Loss for Deep Face Recognition", CVPR 2018
    (arXiv:1801.09414). Defaults s = 64, m = 0.35 as in the paper.

    Args:
        embedding_dim: Size of the input embeddings.
        num_classes: Number of training classes.
        scale: The scale s.
        margin: The additive cosine margin m.
    """

    def __init__(
        self, embedding_dim: int, num_classes: int, scale: float = 64.0, margin: float = 0.35
    ) -> None:
        super().__init__(embedding_dim, num_classes)
        if not scale > 0:
            raise ConfigError(f"loss.scale must be > 0, got {scale}.")
        if not 0 <= margin < 1:
            raise ConfigError(f"loss.margin must be in [0, 1), got {margin}.")
        self.scale, self.margin = float(scale), float(margin)

    def logits(self, embeddings: Tensor, labels: Tensor | None = None) -> Tensor:
        cos = self.cosine(embeddings)
        if labels is not None:
            cos = self.with_target(cos, labels, self.target_of(cos, labels) - self.margin)
        return self.scale * cos


class SphereFaceHead(CosineHead):
    """SphereFace (A-Softmax): multiplicative angular margin, ``||x|| · ψ(θ_y)`` for the target.

    Liu et al., "SphereFace: Deep Hypersphere Embedding for Face Recognition", CVPR 2017
    (arXiv:1704.08063). ψ(θ) = (−1)^k cos(mθ) − 2k for θ ∈ [kπ/m, (k+1)π/m], weights normalised,
    feature norm kept; m = 4 as in the paper. As in the paper's training, the target logit is
    annealed from plain softmax: ``(λ cos θ + ψ(θ)) / (1 + λ)`` with
    λ = max(λ_min, λ_base · (1 + γ·t)^(−power)) at training iteration t (the authors' values
    1000, 5, 0.12, 1). ``lambda_base=0`` gives the pure A-Softmax of the paper's Eq. 7.

    Args:
        embedding_dim: Size of the input embeddings.
        num_classes: Number of training classes.
        margin: The integer angular multiplier m.
        lambda_base: λ at iteration 0 (0 disables the annealing).
        lambda_min: The floor of λ.
        gamma: Annealing rate γ.
        power: Annealing power.
    """

    def __init__(
        self,
        embedding_dim: int,
        num_classes: int,
        margin: int = 4,
        lambda_base: float = 1000.0,
        lambda_min: float = 5.0,
        gamma: float = 0.12,
        power: float = 1.0,
    ) -> None:
        super().__init__(embedding_dim, num_classes)
        if int(margin) != margin or margin < 1:
            raise ConfigError(
                f"loss.margin must be a positive integer for SphereFace, got {margin}."
            )
        if lambda_base < 0 or lambda_min < 0:
            raise ConfigError(
                "loss.lambda_base and loss.lambda_min must be >= 0, "
                f"got {lambda_base}, {lambda_min}."
            )
        self.margin = int(margin)
        self.lambda_base, self.lambda_min = float(lambda_base), float(lambda_min)
        self.gamma, self.power = float(gamma), float(power)
        self.register_buffer("iteration", torch.zeros((), dtype=torch.long))

    def current_lambda(self) -> float:
        """λ at the current training iteration."""
        if self.lambda_base == 0:
            return 0.0
        t = int(self.iteration)
        return max(self.lambda_min, self.lambda_base * (1 + self.gamma * t) ** (-self.power))

    def psi(self, theta: Tensor) -> Tensor:
        """ψ(θ) = (−1)^k cos(mθ) − 2k, k = ⌊mθ/π⌋: monotonically decreasing on [0, π]."""
        k = torch.floor(self.margin * theta.detach() / math.pi)
        sign = 1 - 2 * torch.remainder(k, 2)
        return sign * torch.cos(self.margin * theta) - 2 * k

    def logits(self, embeddings: Tensor, labels: Tensor | None = None) -> Tensor:
        cos = self.cosine(embeddings)
        if labels is not None:
            target_cos = self.target_of(cos, labels)
            lam = self.current_lambda()
            target = (lam * target_cos + self.psi(self.angles(target_cos))) / (1 + lam)
            cos = self.with_target(cos, labels, target)
            if self.training:
                self.iteration += 1
        return embeddings.norm(dim=1, keepdim=True) * cos
