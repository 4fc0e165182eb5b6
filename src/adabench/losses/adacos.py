"""AdaCos: cosine softmax with a scale set from the number of classes, fixed or per batch."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from adabench.losses.base import CosineHead


def adacos_fixed_scale(num_classes: int) -> float:
    """The AdaCos fixed scale s̃ = √2 · ln(C − 1) (Zhang et al. 2019, Eq. 14)."""
    return math.sqrt(2.0) * math.log(num_classes - 1)


class AdaCosHead(CosineHead):
    """AdaCos: ``s · cos θ`` with no margin and s chosen automatically.

    Zhang, Zhao, Yan, Yi & Chen, "AdaCos: Adaptively Scaling Cosine Logits for Effectively
    Learning Deep Face Representations", CVPR 2019 (arXiv:1905.00292).

    - ``dynamic=False`` (fixed AdaCos): s = √2 · ln(C − 1).
    - ``dynamic=True``: s starts at the fixed value; in each training batch, before the logits
      are formed, ``B_avg = (1/N) Σ_i Σ_{j≠y_i} exp(s · cos θ_ij)`` (with the previous s),
      θ_med = median of the target angles, and ``s ← ln(B_avg) / cos(min(π/4, θ_med))``.
      The update is done without gradient.

    Args:
        embedding_dim: Size of the input embeddings.
        num_classes: Number of training classes (at least 3, else ln(C − 1) ≤ 0).
        dynamic: Update the scale per batch.
    """

    min_classes = 3

    def __init__(self, embedding_dim: int, num_classes: int, dynamic: bool = False) -> None:
        super().__init__(embedding_dim, num_classes)
        self.dynamic = bool(dynamic)
        self.register_buffer("scale", torch.tensor(adacos_fixed_scale(self.num_classes)))

    @torch.no_grad()
    def update_scale(self, cosine: Tensor, labels: Tensor) -> None:
        """One dynamic AdaCos update of ``self.scale`` from a batch of cosines and labels."""
        mask = torch.nn.functional.one_hot(labels, self.num_classes).to(torch.bool)
        exp_logits = torch.exp(self.scale * cosine).masked_fill(mask, 0.0)
        b_avg = exp_logits.sum(dim=1).mean()
        theta_med = torch.median(self.angles(self.target_of(cosine, labels)))
        self.scale.copy_(torch.log(b_avg) / torch.cos(theta_med.clamp(max=math.pi / 4)))

    def logits(self, embeddings: Tensor, labels: Tensor | None = None) -> Tensor:
        cos = self.cosine(embeddings)
        if labels is not None and self.dynamic and self.training:
            self.update_scale(cos.detach(), labels)
        return self.scale * cos

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, dynamic={self.dynamic}"
