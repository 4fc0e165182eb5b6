"""Anomaly scorers: fitted once on the normal embeddings, then asked for any number of queries.

A scorer is a class with ``fit(normal) -> self`` and ``score(query) -> [Q] float64`` (higher =
more anomalous) and a ``distance`` (``cosine`` or ``l2``) that the closed-set 1-NN accuracy uses
too; ``conf/scorer/<name>.yaml`` names it by ``_target_``. Pure numpy/FAISS: no Lightning.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from adabench.errors import ConfigError
from adabench.neighbors import (
    INDEXES,
    as_array,
    build_index,
    check_distance,
    check_k,
    knn_search,
    prepare,
    search_index,
)


class Scorer:
    """Base of the anomaly scorers: ``fit`` on normal embeddings, then ``score`` queries.

    Args:
        k: Number of neighbours.
        distance: ``cosine`` or ``l2``.
    """

    def __init__(self, k: int = 1, distance: str = "cosine") -> None:
        self.k = int(k)
        self.distance = check_distance(distance)
        self.fitted_on = 0

    def fit(self, normal: np.ndarray | torch.Tensor) -> Scorer:
        """Remember the normal training embeddings ``[N, D]``; returns ``self``."""
        check_k(self.k, len(normal))
        self.fitted_on = len(normal)
        self._fit(as_array(normal))
        return self

    def score(self, query: np.ndarray | torch.Tensor) -> np.ndarray:
        """Anomaly score of each query embedding, ``[Q]`` float64; higher = more anomalous."""
        if not self.fitted_on:
            raise RuntimeError(f"{type(self).__name__}.score() called before fit().")
        return self._score(as_array(query))

    def _fit(self, normal: np.ndarray) -> None:
        raise NotImplementedError

    def _score(self, query: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class KNNScorer(Scorer):
    """Mean distance to the ``k`` nearest normal embeddings, searched with FAISS.

    Args:
        k: Number of neighbours.
        distance: ``cosine`` (1 − cos) or ``l2`` (Euclidean).
        index, approx_min_size, nprobe, use_gpu: The FAISS index (:func:`build_index`).
    """

    def __init__(
        self,
        k: int = 1,
        distance: str = "cosine",
        index: str = "exact",
        approx_min_size: int = 200_000,
        nprobe: int | None = None,
        use_gpu: bool | None = None,
    ) -> None:
        super().__init__(k, distance)
        if index not in INDEXES:
            raise ConfigError(f"scorer.index must be one of {', '.join(INDEXES)}, got {index!r}.")
        self.index_options = {
            "index": index,
            "approx_min_size": int(approx_min_size),
            "nprobe": nprobe,
            "use_gpu": use_gpu,
        }
        self._index: Any = None
        self._base = np.zeros((0, 0))

    def _fit(self, normal: np.ndarray) -> None:
        self._base = prepare(normal, self.distance)
        self._index = build_index(self._base, self.distance, **self.index_options)

    def _score(self, query: np.ndarray) -> np.ndarray:
        return self.search(query)[0]

    def search(self, query: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(scores, row of each query's nearest normal embedding, its distance), float64."""
        if not self.fitted_on:
            raise RuntimeError("KNNScorer.search() called before fit().")
        q = prepare(as_array(query), self.distance)
        dist, idx = search_index(self._index, self._base, q, self.k, self.distance)
        return dist.mean(axis=1), idx[:, 0], dist[:, 0]


class LOFScorer(Scorer):
    """Local Outlier Factor (novelty mode) on min-max-scaled embeddings (scikit-learn).

    The scorer of the Qiita seed articles, kept for parity; ``distance`` is only used by the
    closed-set 1-NN accuracy.
    """

    def __init__(self, k: int = 5, distance: str = "cosine") -> None:
        super().__init__(k, distance)
        self._scaler: Any = None
        self._lof: Any = None

    def _fit(self, normal: np.ndarray) -> None:
        from sklearn.neighbors import LocalOutlierFactor
        from sklearn.preprocessing import MinMaxScaler

        self._scaler = MinMaxScaler().fit(normal)
        self._lof = LocalOutlierFactor(n_neighbors=self.k, novelty=True)
        self._lof.fit(self._scaler.transform(normal))

    def _score(self, query: np.ndarray) -> np.ndarray:
        return -self._lof.score_samples(self._scaler.transform(query)).astype(np.float64)


def nn_accuracy(
    index_emb: np.ndarray | torch.Tensor,
    index_labels: np.ndarray,
    query_emb: np.ndarray | torch.Tensor,
    query_labels: np.ndarray,
    distance: str = "cosine",
) -> float:
    """Closed-set accuracy of 1-nearest-neighbour classification against labelled embeddings."""
    _, idx = knn_search(index_emb, query_emb, 1, distance)
    return float((np.asarray(index_labels)[idx[:, 0]] == np.asarray(query_labels)).mean())
