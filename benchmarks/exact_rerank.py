"""Exact float64 k-NN on nearly collapsed embeddings: one query at a time vs blocks of queries.

A trained classifier's embeddings sit in tight clusters: FAISS's float32 distances of a query's
k-th and last candidates tie, so `search_index` falls back to an exhaustive float64 search for
that query. A: the fallback as first written (one query at a time, a full stable argsort of
the N distances). B: adabench's (blocks of queries as one float64 matrix product, a partition
and a sort of the few entries up to the k-th). Both arms search the same FAISS index and must
return identical neighbours and distances; interleaved rounds, medians.

    python benchmarks/exact_rerank.py [--n 60000 --dim 512 --queries 2000] [--write]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from _common import finish, machine, table

from adabench import neighbors


def collapsed(n: int, d: int, classes: int, seed: int) -> np.ndarray:
    """Unit vectors in ``classes`` clusters of angular radius ≈ 1e-3 (a trained head's)."""
    r = np.random.default_rng(seed)
    centres = np.random.default_rng(0).normal(size=(classes, d))
    x = centres[r.integers(0, classes, n)] * 1000 + r.normal(size=(n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def one_at_a_time(index, base, query, k, distance):
    """The fallback as first written: each unsure query alone, a full stable argsort."""
    n_cand = min(len(base), k + neighbors.RERANK_EXTRA)
    raw, cand = index.search(np.ascontiguousarray(query, dtype=np.float32), n_cand)
    d = 1.0 - np.einsum("qcd,qd->qc", base[cand], query)
    order = np.argsort(d, axis=1, kind="stable")[:, :k]
    out_d, out_i = np.take_along_axis(d, order, 1), np.take_along_axis(cand, order, 1)
    unsure = np.abs(raw[:, -1] - raw[:, k - 1]) <= neighbors.TIE_TOLERANCE * np.maximum(
        1.0, np.abs(raw[:, k - 1])
    )
    for j in np.flatnonzero(unsure):
        full = neighbors._exact(base, query[j : j + 1], distance)[0]
        top = np.argsort(full, kind="stable")[:k]
        out_d[j], out_i[j] = full[top], top
    return out_d, out_i, int(unsure.sum())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=60_000, help="index size (MNIST's training set)")
    p.add_argument("--dim", type=int, default=512, help="embedding size (ResNet-18's)")
    p.add_argument("--queries", type=int, default=2000)
    p.add_argument("--k", type=int, default=1)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--write", action="store_true")
    args = p.parse_args()

    base = collapsed(args.n, args.dim, 10, seed=1)
    query = collapsed(args.queries, args.dim, 10, seed=2)
    index = neighbors.build_index(base, "cosine")
    times: dict[str, list[float]] = {"one query at a time": [], "blocks of queries": []}
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        a_d, a_i, unsure = one_at_a_time(index, base, query, args.k, "cosine")
        times["one query at a time"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        b_d, b_i = neighbors.search_index(index, base, query, args.k, "cosine")
        times["blocks of queries"].append(time.perf_counter() - t0)
        if not (np.array_equal(a_i, b_i) and np.allclose(a_d, b_d, rtol=0, atol=1e-12)):
            raise SystemExit("the two arms disagree: the benchmark is void")
        print({arm: round(t[-1], 2) for arm, t in times.items()}, flush=True)

    med = {arm: statistics.median(t) for arm, t in times.items()}
    ratio = med["one query at a time"] / med["blocks of queries"]
    head = (
        f"{machine()}; N = {args.n}, D = {args.dim}, {args.queries} queries, k = {args.k}, "
        f"cosine; {unsure} of {args.queries} queries take the exhaustive path; "
        f"median of {args.rounds} interleaved rounds; identical neighbours in every round."
    )
    body = table(
        ["fallback", "median s", "queries/s"],
        [[arm, f"{s:.2f}", f"{args.queries / s:.0f}"] for arm, s in med.items()],
    )
    finish(
        "exact_rerank",
        "Exact float64 k-NN on collapsed embeddings",
        head,
        body,
        ratio,
        "speed-up of blocks over one query at a time",
        args.write,
    )


if __name__ == "__main__":
    main()
