import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from adabench.errors import ConfigError
from adabench.scoring import (
    anomaly_scores,
    detection_metrics,
    knn_scores,
    knn_search,
    lof_scores,
    nn_accuracy,
)

rng = np.random.default_rng(0)
BASE = rng.normal(size=(200, 16)).astype(np.float32)
QUERY = rng.normal(size=(50, 16)).astype(np.float32)


def brute(base, query, k, metric):
    if metric == "cosine":
        b = base / np.linalg.norm(base, axis=1, keepdims=True)
        q = query / np.linalg.norm(query, axis=1, keepdims=True)
        d = 1 - q @ b.T
    else:
        d = np.sqrt(((query[:, None, :] - base[None]) ** 2).sum(-1))
    return np.sort(d, axis=1)[:, :k].mean(1)


@pytest.mark.parametrize("metric", ["cosine", "l2"])
@pytest.mark.parametrize("k", [1, 5])
def test_faiss_knn_equals_brute_force(metric, k):
    np.testing.assert_allclose(
        knn_scores(BASE, QUERY, k, metric), brute(BASE, QUERY, k, metric), rtol=1e-4, atol=1e-5
    )


def test_metrics_equal_scikit_learn():
    y = rng.integers(0, 2, 300)
    s = rng.normal(size=300) + y
    m = detection_metrics(s, y)
    assert m["auroc"] == pytest.approx(roc_auc_score(y, s), abs=1e-6)
    assert m["aupr"] == pytest.approx(average_precision_score(y, s), abs=1e-6)
    fpr, tpr, _ = roc_curve(y, s)
    assert m["fpr_at_95tpr"] == pytest.approx(fpr[tpr >= 0.95].min(), abs=1e-6)


def test_perfect_separation():
    m = detection_metrics(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1]))
    assert m == {"auroc": 1.0, "aupr": 1.0, "fpr_at_95tpr": 0.0}


def test_lof_flags_far_points():
    far = BASE[:5] * 0 + 50
    s = lof_scores(BASE, np.vstack([QUERY, far]), k=5)
    assert s[-5:].min() > s[:-5].max()


def test_nn_accuracy():
    labels = np.arange(200) % 4
    assert nn_accuracy(BASE, labels, BASE[:40], labels[:40], "l2") == 1.0


def test_bad_scorer_input():
    with pytest.raises(
        ConfigError,
        match=r"scorer.k=201 must be between 1 and the number of normal training images \(200\)",
    ):
        knn_scores(BASE, QUERY, 201)
    with pytest.raises(
        ConfigError, match=r"scorer.metric must be one of cosine, l2, got 'manhattan'"
    ):
        knn_scores(BASE, QUERY, 1, "manhattan")
    with pytest.raises(ConfigError, match="Unknown scorer 'knm'. Valid choices: knn, lof"):
        anomaly_scores(BASE, QUERY, "knm")
    with pytest.raises(ConfigError, match="both normal and abnormal"):
        detection_metrics(np.ones(3), np.zeros(3))


def clustered(n, d, seed=0, centers=64, latent=6):
    """Embedding-like data: clusters on a low-dimensional manifold, projected to d dims."""
    proj = np.random.default_rng(123).normal(size=(latent, d))
    r = np.random.default_rng(seed)
    c = np.random.default_rng(7).normal(size=(centers, latent)) * 3
    z = c[r.integers(0, centers, n)] + r.normal(size=(n, latent))
    return (z @ proj + 0.05 * r.normal(size=(n, d))).astype(np.float32)


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_indexes_agree_with_exact(kind):
    base, query = clustered(20000, 32), clustered(200, 32, seed=1)
    _, exact = knn_search(base, query, 5, "cosine")
    _, approx = knn_search(base, query, 5, "cosine", index=kind, nprobe=32)
    recall = np.mean([len(set(a) & set(e)) / 5 for a, e in zip(approx, exact, strict=True)])
    assert recall >= 0.95


def test_auto_index_switches_by_size():
    from adabench.scoring import build_index

    base = clustered(5000, 8)
    assert type(build_index(base, "l2", "auto", approx_min_size=10_000)).__name__ == "IndexFlatL2"
    assert "IVF" in type(build_index(base, "l2", "auto", approx_min_size=1000)).__name__
    with pytest.raises(ConfigError, match="scorer.index must be one of exact, ivf, hnsw, auto"):
        build_index(base, "l2", "annoy")


def test_gpu_request_without_gpu_is_clear():
    import faiss

    from adabench.scoring import build_index

    if hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0:
        pytest.skip("a GPU is visible")
    with pytest.raises(ConfigError, match="use_gpu=true, but FAISS sees no GPU"):
        build_index(clustered(100, 8), "l2", use_gpu=True)
    assert build_index(clustered(100, 8), "l2", use_gpu=None).ntotal == 100  # clean CPU fallback
