import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from adabench import neighbors
from adabench.config import build
from adabench.errors import ConfigError
from adabench.metrics import METRICS, Metric, detection_metrics, register
from adabench.neighbors import build_index, knn_search
from adabench.scoring import KNNScorer, LOFScorer, Scorer, nn_accuracy

rng = np.random.default_rng(0)
BASE = rng.normal(size=(200, 16)).astype(np.float32)
QUERY = rng.normal(size=(50, 16)).astype(np.float32)


def knn_scores(base, query, k=1, distance="cosine", **options):
    return KNNScorer(k, distance, **options).fit(base).score(query)


def brute(base, query, k, distance):
    if distance == "cosine":
        b = base / np.linalg.norm(base, axis=1, keepdims=True)
        q = query / np.linalg.norm(query, axis=1, keepdims=True)
        d = 1 - q @ b.T
    else:
        d = np.sqrt(((query[:, None, :] - base[None]) ** 2).sum(-1))
    return np.sort(d, axis=1)[:, :k].mean(1)


@pytest.mark.parametrize("distance", ["cosine", "l2"])
@pytest.mark.parametrize("k", [1, 5])
def test_faiss_knn_equals_brute_force(distance, k):
    np.testing.assert_allclose(
        knn_scores(BASE, QUERY, k, distance), brute(BASE, QUERY, k, distance), rtol=1e-4, atol=1e-5
    )


def test_a_fitted_scorer_answers_many_queries_the_same():
    scorer = KNNScorer(3, "l2").fit(BASE)
    whole = scorer.score(QUERY)
    np.testing.assert_array_equal(
        np.concatenate([scorer.score(QUERY[:20]), scorer.score(QUERY[20:])]), whole
    )
    with pytest.raises(RuntimeError, match=r"score\(\) called before fit\(\)"):
        KNNScorer().score(QUERY)


def test_float32_ties_cannot_change_the_metrics():
    """Nearly collapsed embeddings: distances differ below float32's resolution near 1 − cos.

    FAISS alone (float32 ``1 − inner product``) rounds them into ties; the float64 re-ranking
    keeps them apart, so the scores order the test images as exact arithmetic does.
    """
    r = np.random.default_rng(3)
    direction = r.normal(size=64)
    normal = direction + 1e-4 * r.normal(size=(50, 64))
    test_n = direction + 1e-4 * r.normal(size=(20, 64))
    test_a = direction + 1.6e-4 * r.normal(size=(20, 64))
    query = np.vstack([test_n, test_a])
    labels = np.r_[np.zeros(20), np.ones(20)]
    exact = brute(normal.astype(np.float64), query, 1, "cosine")  # float64 throughout
    got = KNNScorer(1, "cosine").fit(normal).score(query)
    import faiss

    index = faiss.IndexFlatIP(64)
    unit = lambda x: (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)  # noqa: E731
    index.add(unit(normal))
    f32 = 1.0 - index.search(unit(query), 1)[0][:, 0].astype(np.float64)
    assert len(np.unique(f32)) < len(f32) - 5  # float32 alone ties many scores
    assert len(np.unique(got)) == len(got)
    np.testing.assert_allclose(got, exact, rtol=0, atol=1e-12)
    assert detection_metrics(got, labels)["auroc"] == pytest.approx(
        detection_metrics(exact, labels)["auroc"], abs=1e-12
    )


def test_k_smallest_is_a_stable_argsort_prefix():
    r = np.random.default_rng(5)
    dist = r.integers(0, 6, size=(40, 30)).astype(np.float64)  # many exact ties
    for k in (1, 3, 30):
        d, i = neighbors._k_smallest(dist, k)
        expected = np.argsort(dist, axis=1, kind="stable")[:, :k]
        np.testing.assert_array_equal(i, expected)
        np.testing.assert_array_equal(d, np.take_along_axis(dist, expected, 1))


def test_the_exhaustive_fallback_in_blocks_equals_a_full_sort(monkeypatch):
    """Duplicated base vectors: every query's k-th and last candidates tie, so every query
    takes the exhaustive float64 path, here in blocks of 7 rows."""
    r = np.random.default_rng(6)
    base = np.repeat(r.normal(size=(30, 8)), 12, axis=0)  # 360 vectors, each 12 times
    query = r.normal(size=(25, 8))
    monkeypatch.setattr(neighbors, "_CHUNK_ELEMENTS", 7 * len(base))
    for distance in ("cosine", "l2"):
        d, i = knn_search(base, query, 3, distance)
        b, q = neighbors.prepare(base, distance), neighbors.prepare(query, distance)
        full = neighbors._exact(b, q, distance)
        expected = np.argsort(full, axis=1, kind="stable")[:, :3]  # lowest index among ties
        np.testing.assert_array_equal(i, expected)
        np.testing.assert_allclose(d, np.take_along_axis(full, expected, 1), rtol=0, atol=1e-12)


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
    s = LOFScorer(k=5).fit(BASE).score(np.vstack([QUERY, far]))
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
        ConfigError, match=r"scorer.distance must be one of cosine, l2, got 'manhattan'"
    ):
        knn_scores(BASE, QUERY, 1, "manhattan")
    with pytest.raises(ConfigError, match=r"scorer.kk is not a parameter of .*KNNScorer. Valid"):
        build({"_target_": "adabench.scoring.KNNScorer", "kk": 3}, where="scorer")
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
    base = clustered(5000, 8)
    assert type(build_index(base, "l2", "auto", approx_min_size=10_000)).__name__ == "IndexFlatL2"
    assert "IVF" in type(build_index(base, "l2", "auto", approx_min_size=1000)).__name__
    with pytest.raises(ConfigError, match="scorer.index must be one of exact, ivf, hnsw, auto"):
        build_index(base, "l2", "annoy")


def test_gpu_request_without_gpu_is_clear():
    import faiss

    if hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0:
        pytest.skip("a GPU is visible")
    with pytest.raises(ConfigError, match="use_gpu=true, but FAISS sees no GPU"):
        build_index(clustered(100, 8), "l2", use_gpu=True)
    assert build_index(clustered(100, 8), "l2", use_gpu=None).ntotal == 100  # clean CPU fallback


class MedianScorer(Scorer):
    """A scorer defined outside src/: median distance to the k nearest normal embeddings."""

    def _fit(self, normal):
        self.normal = normal

    def _score(self, query):
        d = np.sqrt(((query[:, None, :] - self.normal[None]) ** 2).sum(-1))
        return np.median(np.sort(d, axis=1)[:, : self.k], axis=1)


def test_a_scorer_from_outside_src_runs_through_the_config(tmp_path):
    from adabench.build import build_run
    from adabench.fit import evaluate_baseline

    from .conftest import compose_config

    cfg = compose_config(
        "loss=baseline_pixels",
        "~scorer",
        f"+scorer={{_target_: {__name__}.MedianScorer, k: 3, distance: l2}}",
        f"paths.cache_dir={tmp_path}",
    )
    built = build_run(cfg)
    result = evaluate_baseline(built)
    dm = built.dm
    normal = dm.train_images[dm.train_is_normal].float().flatten(1).numpy() / 255
    test = dm.test_images.float().flatten(1).numpy() / 255
    expected = MedianScorer(3, "l2").fit(normal).score(test)
    np.testing.assert_allclose(result.scores["score"], expected.astype(np.float32), rtol=1e-5)
    assert result.metrics["auroc"] == pytest.approx(
        detection_metrics(expected, dm.test_is_abnormal.numpy())["auroc"], abs=1e-6
    )


def test_a_metric_registered_outside_src_is_computed():
    def tpr_at_5fpr(scores, is_abnormal):
        from adabench.metrics import roc_curve as exact_roc

        fpr, tpr = exact_roc(scores, is_abnormal)
        return float(tpr[fpr <= 0.05].max())

    register(Metric("tpr_at_5fpr", True, 0.05, tpr_at_5fpr))
    try:
        y = rng.integers(0, 2, 200)
        s = rng.normal(size=200) + 2 * y
        m = detection_metrics(s, y)
        assert set(m) == {"auroc", "aupr", "fpr_at_95tpr", "tpr_at_5fpr"}
        fpr, tpr, _ = roc_curve(y, s)
        assert m["tpr_at_5fpr"] == pytest.approx(tpr[fpr <= 0.05].max())
    finally:
        METRICS.pop("tpr_at_5fpr")
