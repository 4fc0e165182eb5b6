"""k-NN scoring: FAISS exact vs torch matmul+topk vs scikit-learn brute, and FAISS IVF / HNSW.

Embedding-like vectors (clusters on a low-dimensional manifold, projected to D dims) of index
size N, Q queries, k = 1 and 5, cosine distance. Reports queries/s and the ratio to FAISS
exact; above --approx-min-size also an approximate FAISS index with its recall@k against exact
search. The last line is the speed-up of the approximate index at the largest size.

    python benchmarks/knn_scoring.py [--sizes 1000 10000 100000 1000000] [--write]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _common import machine, table, write_section
from sklearn.neighbors import NearestNeighbors

from adabench.neighbors import build_index


def embeddings(n: int, d: int, seed: int, centers: int = 256, latent: int = 16) -> np.ndarray:
    proj = np.random.default_rng(123).normal(size=(latent, d)).astype(np.float32)
    c = np.random.default_rng(7).normal(size=(centers, latent)).astype(np.float32) * 3
    r = np.random.default_rng(seed)
    out = np.empty((n, d), dtype=np.float32)
    for i in range(0, n, 100_000):  # bounded memory
        m = min(100_000, n - i)
        z = c[r.integers(0, centers, m)] + r.normal(size=(m, latent)).astype(np.float32)
        out[i : i + m] = z @ proj + 0.05 * r.normal(size=(m, d)).astype(np.float32)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def faiss_search(base, query, k, **opts):
    t0 = time.perf_counter()
    index = build_index(base, "cosine", **opts)
    built = time.perf_counter()
    _, idx = index.search(query, k)
    return time.perf_counter() - built, built - t0, idx


def torch_search(base, query, k):
    b, q = torch.from_numpy(base), torch.from_numpy(query)
    t0 = time.perf_counter()
    out = []
    chunk = max(1, int(2e8 // max(1, len(base))))  # ~800 MB of similarities at a time
    for i in range(0, len(q), chunk):
        out.append(torch.topk(q[i : i + chunk] @ b.T, k, dim=1).indices)
    return time.perf_counter() - t0, torch.cat(out).numpy()


def sklearn_search(base, query, k):
    nn = NearestNeighbors(n_neighbors=k, algorithm="brute", metric="cosine", n_jobs=-1).fit(base)
    t0 = time.perf_counter()
    idx = nn.kneighbors(query, return_distance=False)
    return time.perf_counter() - t0, idx


def recall(approx, exact) -> float:
    k = exact.shape[1]
    return float(np.mean([len(set(a) & set(e)) / k for a, e in zip(approx, exact, strict=True)]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000, 1_000_000])
    p.add_argument("--dims", type=int, nargs="+", default=[128, 512])
    p.add_argument("--ks", type=int, nargs="+", default=[1, 5])
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--sklearn-max", type=int, default=100_000, help="largest N for scikit-learn")
    p.add_argument("--approx-min-size", type=int, default=100_000)
    p.add_argument("--approx", default="ivf", choices=["ivf", "hnsw"])
    p.add_argument("--nprobes", type=int, nargs="+", default=[8, 16, 32, 64, 128])
    p.add_argument("--write", action="store_true")
    args = p.parse_args()
    rows, approx_rows = [], []
    headline = None
    for d in args.dims:
        for n in args.sizes:
            base, query = embeddings(n, d, 0), embeddings(args.queries, d, 1)
            for k in args.ks:
                t_f, t_build, exact = faiss_search(base, query, k)
                t_t, idx_t = torch_search(base, query, k)
                row = [
                    n,
                    d,
                    k,
                    f"{args.queries / t_f:.0f}",
                    f"{args.queries / t_t:.0f}",
                    f"{t_f / t_t:.2f}",
                ]
                if n <= args.sklearn_max:
                    t_s, _ = sklearn_search(base, query, k)
                    row += [f"{args.queries / t_s:.0f}", f"{t_f / t_s:.2f}"]
                else:
                    row += ["-", "-"]
                row.append(f"{recall(idx_t, exact):.3f}")
                rows.append(row)
                print(" | ".join(map(str, row)), flush=True)
                if n >= args.approx_min_size and k == max(args.ks):
                    for nprobe in args.nprobes if args.approx == "ivf" else [None]:
                        t_a, t_ab, idx_a = faiss_search(
                            base, query, k, index=args.approx, nprobe=nprobe
                        )
                        rec = recall(idx_a, exact)
                        approx_rows.append(
                            [
                                n,
                                d,
                                k,
                                args.approx,
                                nprobe or "-",
                                f"{t_ab:.1f}",
                                f"{args.queries / t_a:.0f}",
                                f"{t_f / t_a:.1f}",
                                f"{rec:.4f}",
                            ]
                        )
                        print(" | ".join(map(str, approx_rows[-1])), flush=True)
                        if n == max(args.sizes) and rec >= 0.99 and d == args.dims[0]:
                            headline = headline or (t_f / t_a, rec, nprobe)
                        if rec >= 0.999:
                            break
    exact_table = table(
        [
            "N",
            "D",
            "k",
            "FAISS q/s",
            "torch q/s",
            "torch / FAISS speed",
            "sklearn q/s",
            "sklearn / FAISS speed",
            "torch recall",
        ],
        rows,
    )
    approx_table = table(
        ["N", "D", "k", "index", "nprobe", "build s", "q/s", "speed-up vs exact", "recall@k"],
        approx_rows,
    )
    print(exact_table)
    print(approx_table)
    ratio = f"{headline[0]:.1f}" if headline else "n/a (no setting reached recall 0.99)"
    print(f"ratio: {ratio}")
    if args.write:
        cmd = "python benchmarks/knn_scoring.py --write"
        note = (
            f"Headline: approximate {args.approx} at N={max(args.sizes)}, D={args.dims[0]}: "
            f"{ratio}x exact speed"
            + (f" at recall@k {headline[1]:.4f} (nprobe {headline[2]})" if headline else "")
        )
        body = (
            f"### 3. k-NN scoring\n\n`{cmd}`\n\n{args.queries} queries, cosine; {machine()}\n\n"
            f"{exact_table}\n\n{approx_table}\n\n**{note}**"
        )
        write_section("knn_scoring", body)


if __name__ == "__main__":
    main()
