"""NT-Xent, the normalised temperature-scaled cross-entropy of SimCLR.

Chen, Kornblith, Norouzi & Hinton 2020, "A Simple Framework for Contrastive Learning of Visual
Representations" (arXiv:2002.05709), Eq. 1: for a batch of N images seen in two augmented views
(2N embeddings), the positive of each view is the other view of its image and the 2N − 2 other
views are its negatives; ℓ(i, j) = −log(exp(sim(z_i, z_j)/τ) / Σ_{k≠i} exp(sim(z_i, z_k)/τ)),
averaged over all 2N views, with sim the cosine similarity. No labels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from adabench.errors import ConfigError


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
