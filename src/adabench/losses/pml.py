"""Any loss of pytorch-metric-learning as a head, with its regularizers, distance and miner.

Musgrave, Belongie & Lim 2020, "A Metric Learning Reality Check" (arXiv:2003.08505), and the
library's documentation (https://kevinmusgrave.github.io/pytorch-metric-learning/). The loss is
given by ``_target_`` in ``conf/loss/pml_*.yaml``; classification-style and proxy losses
(``ArcFaceLoss``, ``SubCenterArcFaceLoss``, ``NormalizedSoftmaxLoss``, ``ProxyAnchorLoss``, …)
are built with ``_partial_: true`` and get ``num_classes`` and ``embedding_size`` from the run;
pair and triplet losses (``ContrastiveLoss``, ``TripletMarginLoss``, ``MultiSimilarityLoss``, …)
take a ``miner`` that picks the pairs or triplets of each batch. Regularizers, distances and
reducers are nested ``_target_`` nodes of the loss, built before it.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

from torch import Tensor, nn

from adabench.errors import ConfigError
from adabench.losses.base import ClassificationHead


def _accepts(cls: Any, name: str) -> bool:
    """Whether constructing ``cls`` takes ``name``, also through ``**kwargs`` passed to a base."""
    for klass in getattr(cls, "__mro__", (cls,)):
        init = klass.__init__ if isinstance(klass, type) else klass
        try:
            params = inspect.signature(init).parameters
        except (TypeError, ValueError):
            return False
        if name in params:
            return True
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            return False
    return False


def _complete(loss: Any, embedding_dim: int, num_classes: int) -> nn.Module:
    """The loss object: a partial is called with the sizes it asks for."""
    if isinstance(loss, nn.Module):
        return loss
    if not callable(loss):
        raise ConfigError(f"loss.loss must be a pytorch-metric-learning loss, got {loss!r}.")
    target = loss.func if isinstance(loss, functools.partial) else loss
    sizes = {"num_classes": num_classes, "embedding_size": embedding_dim}
    built = loss(**{k: v for k, v in sizes.items() if _accepts(target, k)})
    if not isinstance(built, nn.Module):
        raise ConfigError(f"loss.loss built {type(built).__name__}, not a loss module.")
    return built


class PMLHead(ClassificationHead):
    """A pytorch-metric-learning loss (and optional miner) behind the head interface.

    Args:
        embedding_dim: Size of the input embeddings.
        num_classes: Number of training classes.
        loss: The PML loss, or a partial of its class still missing ``num_classes`` /
            ``embedding_size``.
        miner: A PML miner (pair and triplet losses), or ``None``.
    """

    def __init__(self, embedding_dim: int, num_classes: int, loss: Any, miner: Any = None) -> None:
        super().__init__(embedding_dim, num_classes)
        self.loss = _complete(loss, self.embedding_dim, self.num_classes)
        self.miner = miner

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        """The PML loss of the batch (on the pairs / triplets the miner picks, if any)."""
        indices = self.miner(embeddings, labels) if self.miner is not None else None
        return self.loss(embeddings, labels, indices)

    def logits(self, embeddings: Tensor, labels: Tensor | None = None) -> Tensor | None:
        """The loss's own margin-free class logits (``get_logits``), where it has classes.

        ``None`` for pair and triplet losses, which have no classes to predict.
        """
        get = getattr(self.loss, "get_logits", None)
        return get(embeddings) if get is not None else None

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, loss={type(self.loss).__name__}"
