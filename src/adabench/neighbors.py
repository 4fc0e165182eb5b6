"""Nearest-neighbour search with FAISS, distances made exact in float64 (no Lightning).

FAISS finds the candidates (exact, IVF or HNSW index, CPU or GPU); their distances to the query
are recomputed in float64, so float32 rounding cannot create ties that change a metric.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from adabench.errors import ConfigError

DISTANCES = ("cosine", "l2")
INDEXES = ("exact", "ivf", "hnsw", "auto")


def as_array(x: np.ndarray | torch.Tensor) -> np.ndarray:
    """``x`` as a contiguous float64 numpy array."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.ascontiguousarray(x, dtype=np.float64)


def check_k(k: int, n: int) -> None:
    """Raise :class:`ConfigError` unless ``1 <= k <= n`` (n = normal training images)."""
    if not 1 <= k <= n:
        raise ConfigError(
            f"scorer.k={k} must be between 1 and the number of normal training images ({n})."
        )


def check_distance(distance: str) -> str:
    """Raise :class:`ConfigError` unless ``distance`` is ``cosine`` or ``l2``."""
    if distance not in DISTANCES:
        raise ConfigError(
            f"scorer.distance must be one of {', '.join(DISTANCES)}, got {distance!r}."
        )
    return distance


def prepare(x: np.ndarray, distance: str) -> np.ndarray:
    """float64 vectors ready for search: unit-normalised for ``cosine``, as they are for ``l2``."""
    if check_distance(distance) == "cosine":
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        x = x / np.maximum(norms, 1e-12)
    return np.ascontiguousarray(x, dtype=np.float64)


def build_index(
    base: np.ndarray,
    distance: str = "cosine",
    index: str = "exact",
    approx_min_size: int = 200_000,
    nprobe: int | None = None,
    use_gpu: bool | None = None,
) -> Any:
    """A FAISS index over ``base`` (already prepared for ``distance``).

    Args:
        base: ``[N, D]`` vectors (unit-normalised for cosine); FAISS holds them as float32.
        distance: ``cosine`` (inner product on unit vectors) or ``l2``.
        index: ``exact`` (flat), ``ivf`` (inverted lists, ``nlist = 4·√N``), ``hnsw`` (graph,
            M = 32) or ``auto`` (exact below ``approx_min_size`` vectors, IVF above).
        approx_min_size: Size from which ``auto`` switches to IVF.
        nprobe: Lists visited per IVF query (default 16: recall@5 ≥ 0.999 at 15x exact speed
            on 10⁶ embedding-like vectors, see docs/benchmarks.md).
        use_gpu: Put the index on the GPU (``None``: when FAISS has GPU support and sees one;
            ``False``: never). Falls back to the CPU cleanly when FAISS is the CPU build.

    Raises:
        ConfigError: unknown index kind, or ``use_gpu=True`` with no GPU visible to FAISS.
    """
    import faiss

    if index not in INDEXES:
        raise ConfigError(f"scorer.index must be one of {', '.join(INDEXES)}, got {index!r}.")
    base = np.ascontiguousarray(base, dtype=np.float32)
    n, d = base.shape
    if index == "auto":
        index = "ivf" if n >= approx_min_size else "exact"
    # Approximate indexes search unit vectors by L2 (same order as cosine, better recall than
    # inner-product graphs/lists); knn_search converts the distances back.
    if index == "exact":
        out = faiss.IndexFlatIP(d) if distance == "cosine" else faiss.IndexFlatL2(d)
    elif index == "hnsw":
        out = faiss.IndexHNSWFlat(d, 32)
        out.hnsw.efSearch = 128
    else:
        nlist = max(1, min(n // 39, int(4 * np.sqrt(n))))
        out = faiss.IndexIVFFlat(faiss.IndexFlatL2(d), d, nlist)
        rng = np.random.default_rng(0)
        out.train(base[rng.choice(n, size=min(n, 64 * nlist), replace=False)])
        out.nprobe = int(nprobe or min(nlist, 16))
    gpus = faiss.get_num_gpus() if hasattr(faiss, "StandardGpuResources") else 0
    if use_gpu and gpus == 0:
        raise ConfigError("scorer.use_gpu=true, but FAISS sees no GPU (faiss-cpu installed?).")
    if use_gpu is not False and gpus > 0 and index != "hnsw":
        out = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, out)
    out.add(base)
    return out


def knn_search(
    index_emb: np.ndarray | torch.Tensor,
    query_emb: np.ndarray | torch.Tensor,
    k: int,
    distance: str = "cosine",
    **index_options: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """k-NN with FAISS: distances ``[Q, k]`` (ascending, float64) and indices ``[Q, k]``.

    Distances are ``1 − cos`` for ``distance="cosine"`` and Euclidean for ``distance="l2"``.
    ``index_options`` go to :func:`build_index` (exact search by default).
    """
    base, query = prepare(as_array(index_emb), distance), prepare(as_array(query_emb), distance)
    check_k(k, len(base))
    return search_index(build_index(base, distance, **index_options), base, query, k, distance)


RERANK_EXTRA = 8  # candidates beyond k that FAISS returns for the exact float64 re-ranking
TIE_TOLERANCE = 1e-4  # relative: FAISS's float32 distances closer than this may be misordered
_CHUNK_ELEMENTS = 1 << 24  # float64 elements per re-ranking chunk (128 MiB)


def _exact(base: np.ndarray, query: np.ndarray, distance: str) -> np.ndarray:
    """float64 distances ``[Q, N]`` between prepared queries and base vectors."""
    if distance == "cosine":
        return 1.0 - query @ base.T
    sq = (query**2).sum(1)[:, None] - 2.0 * query @ base.T + (base**2).sum(1)[None]
    return np.sqrt(np.maximum(sq, 0.0))


def search_index(
    index: Any, base: np.ndarray, query: np.ndarray, k: int, distance: str
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest base vectors of each query, with exact float64 distances.

    FAISS computes in float32: ``1 − inner product`` moves in steps of ≈ 6e-8, so nearly equal
    distances collapse into ties (or swap) and change AUROC. FAISS proposes
    ``k + RERANK_EXTRA`` candidates and their distances are recomputed in float64; where the
    last candidate is within float32's error of the k-th (nearly collapsed embeddings), the
    query is searched exhaustively in float64 instead. Either way every distance, and the
    order of the k nearest, is the float64 one.
    """
    n_cand = min(len(base), k + RERANK_EXTRA)
    raw, cand = index.search(np.ascontiguousarray(query, dtype=np.float32), n_cand)
    out_d = np.empty((len(query), k))
    out_i = np.empty((len(query), k), dtype=np.int64)
    chunk = max(1, _CHUNK_ELEMENTS // (n_cand * max(1, base.shape[1])))
    for start in range(0, len(query), chunk):  # bounded memory: [chunk, n_cand, D] float64
        sl = slice(start, start + chunk)
        c, q = cand[sl], query[sl]
        valid = c >= 0  # approximate indexes may return fewer than asked (-1)
        b = base[np.where(valid, c, 0)]  # [chunk, n_cand, D]
        if distance == "cosine":
            d = 1.0 - np.einsum("qcd,qd->qc", b, q)
        else:
            d = np.sqrt(((b - q[:, None, :]) ** 2).sum(-1))
        d = np.where(valid, d, np.inf)
        order = np.argsort(d, axis=1, kind="stable")[:, :k]
        out_d[sl], out_i[sl] = np.take_along_axis(d, order, 1), np.take_along_axis(c, order, 1)
        if n_cand == len(base):
            continue
        r = raw[sl]
        unsure = np.abs(r[:, -1] - r[:, k - 1]) <= TIE_TOLERANCE * np.maximum(
            1.0, np.abs(r[:, k - 1])
        )
        rows = max(1, _CHUNK_ELEMENTS // len(base))  # exhaustive float64, a block at a time
        unsure_rows = np.flatnonzero(unsure)
        for u in range(0, len(unsure_rows), rows):
            js = unsure_rows[u : u + rows]
            d_top, i_top = _k_smallest(_exact(base, q[js], distance), k)
            out_d[start + js], out_i[start + js] = d_top, i_top
    return out_d, out_i


def _k_smallest(dist: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` smallest of each row, ascending, ties broken by the lower index.

    The same as ``argsort(kind="stable")[:k]``, in O(N) per row: a partition finds the k-th
    value, and only the entries up to it (ties included) are sorted.
    """
    kth = np.partition(dist, k - 1, axis=1)[:, k - 1 : k]
    out_d = np.empty((len(dist), k))
    out_i = np.empty((len(dist), k), dtype=np.int64)
    for r, row in enumerate(dist):
        idx = np.flatnonzero(row <= kth[r])
        top = idx[np.lexsort((idx, row[idx]))[:k]]
        out_d[r], out_i[r] = row[top], top
    return out_d, out_i
