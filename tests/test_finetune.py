"""Fine-tuning: stages, frozen trunk, BatchNorm, learning rates, the trunk cache, baselines."""

from __future__ import annotations

import copy
import json

import lightning as L
import numpy as np
import pytest
import torch
from sklearn.neighbors import NearestNeighbors

from adabench.backbone import create_model
from adabench.build import build_datamodule, build_embedder, build_module, use_trunk_cache
from adabench.errors import ConfigError
from adabench.run import train
from adabench.stages import split_backbone, stage_layout
from adabench.trunk_cache import TrunkCache, trunk_key

from .conftest import compose_config

PRETRAINED = ["backbone=efficientnet_lite0", "dataset.channels=3", "dataset.pad_crop=0"]


def _config(tmp_path, *overrides: str):
    return compose_config(
        f"paths.output_dir={tmp_path / 'run'}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        "trainer.enable_progress_bar=false",
        "logger=none",
        *overrides,
    )


@pytest.mark.parametrize("name", ["tf_efficientnet_lite0", "resnet18", "mobilenetv2_050"])
def test_every_split_computes_what_the_model_computes(name):
    model = create_model(name, 3)[0].eval()
    n = len(stage_layout(model).stages)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = model(x)
        for freeze in [*range(1, n + 1), "all"]:
            part = split_backbone(copy.deepcopy(model), freeze)
            got = part.rest(part.trunk(x)) if part.trunk is not None else part.rest(x)
            torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
            assert part.num_features == model.num_features


def test_out_stage_pools_a_middle_stage_and_bad_values_are_named():
    model = create_model("tf_efficientnet_lite0", 3)[0].eval()
    part = split_backbone(model, 0, out_stage=5)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        h = model.bn1(model.conv_stem(x))
        for stage in model.blocks[:5]:
            h = stage(h)
        torch.testing.assert_close(part.rest(x), h.mean(dim=(2, 3)))
    assert part.num_features == 112
    with pytest.raises(ConfigError, match=r"freeze must be 0 .*1\.\.7 .*'all', got 9"):
        split_backbone(model, 9)
    with pytest.raises(ConfigError, match=r"out_stage must be null, 1\.\.7 or -7\.\.-1 .*got 0"):
        split_backbone(model, 0, out_stage=0)
    with pytest.raises(ConfigError, match=r"got -8"):
        split_backbone(model, 0, out_stage=-8)
    # counted from the end: -2 is stage 6 of 7, the same split as out_stage=6
    from_end = split_backbone(copy.deepcopy(model), 0, out_stage=-3)
    assert from_end.out_stage == 5 and from_end.num_features == 112
    with torch.no_grad():
        torch.testing.assert_close(from_end.rest(x), part.rest(x))


def test_frozen_layers_and_their_batchnorm_do_not_change(tmp_path):
    cfg = _config(tmp_path, *PRETRAINED, "backbone.freeze=4", "backbone.cache_trunk=false")
    L.seed_everything(0, verbose=False)
    dm = build_datamodule(cfg)
    dm.setup()
    module = build_module(cfg, dm)
    trunk_before = copy.deepcopy(module.embedder.trunk.state_dict())
    rest_before = copy.deepcopy(module.embedder.backbone.state_dict())
    trainer = L.Trainer(
        max_epochs=1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, datamodule=dm)
    trunk_after = module.embedder.trunk.state_dict()
    for k, v in trunk_before.items():  # weights and running statistics alike
        assert torch.equal(v, trunk_after[k]), k
    bn_stats = [k for k in rest_before if k.endswith("running_mean")]
    assert bn_stats and any(
        not torch.equal(rest_before[k], module.embedder.backbone.state_dict()[k]) for k in bn_stats
    )
    module.train()
    assert not module.embedder.trunk.training and module.embedder.backbone.training
    assert not any(p.requires_grad for p in module.embedder.trunk.parameters())


def test_backbone_learning_rate_is_scaled(tmp_path):
    cfg = _config(tmp_path, *PRETRAINED, "backbone.freeze=6", "backbone.lr_scale=0.1")
    dm = build_datamodule(cfg)
    dm.setup()
    module = build_module(cfg, dm)
    opt = module.configure_optimizers()
    opt = opt["optimizer"] if isinstance(opt, dict) else opt
    lr = float(cfg.optimizer.lr)
    backbone, rest = opt.param_groups
    assert backbone["name"] == "backbone" and backbone["lr"] == pytest.approx(0.1 * lr)
    assert rest["lr"] == pytest.approx(lr)
    ids = {id(p) for p in backbone["params"]}
    assert ids == {id(p) for p in module.embedder.backbone.parameters()}
    trunk = {id(p) for p in module.embedder.trunk.parameters()}
    assert not trunk & {id(p) for g in opt.param_groups for p in g["params"]}


def test_trunk_cache_key_changes_with_what_changes_the_outputs():
    base = dict(model="m", weights="w", frozen_stages=4, out_stage=None, image_size=96)
    keys = {trunk_key(**base)}
    for change in (
        {"weights": "w2"},
        {"image_size": 64},
        {"frozen_stages": 5},
        {"out_stage": 5},
        {"model": "m2"},
    ):
        keys.add(trunk_key(**{**base, **change}))
    assert len(keys) == 6
    assert trunk_key(**base) == trunk_key(**dict(reversed(list(base.items()))))


def test_trunk_cache_computes_each_image_once_per_pool_and_view(tmp_path):
    calls = []

    def compute(x):
        calls.append(len(x))
        return x.float().mean(dim=(2, 3))

    images = torch.randint(0, 255, (10, 3, 4, 4), dtype=torch.uint8)
    cache = TrunkCache(tmp_path, "k", batch_size=4)
    first = cache.outputs("pool", np.arange(10), images, compute)
    assert sum(calls) == 10 and cache.computed == 10
    again = TrunkCache(tmp_path, "k").outputs("pool", np.arange(5, 10), images[5:], compute)
    assert sum(calls) == 10  # read back, not computed
    torch.testing.assert_close(again, first[5:])
    flipped = cache.outputs("pool", np.arange(10), images, lambda x: x[..., 0].float(), "hflip")
    torch.testing.assert_close(flipped, images.flip(-1)[..., 0].float())
    # another pool (other data): computed anew, the first pool's entries untouched
    other = torch.zeros_like(images)
    assert TrunkCache(tmp_path, "k").outputs("pool2", np.arange(10), other, compute).sum() == 0
    assert sum(calls) == 20
    # one object reads a pool's shards once, and without a cache folder still computes once
    from adabench import trunk_cache

    reads = []
    real = trunk_cache._load_shards
    trunk_cache._load_shards = lambda folder: reads.append(folder) or real(folder)
    try:
        same = TrunkCache(tmp_path, "k")
        same.outputs("pool", np.arange(10), images, compute)
        same.outputs("pool", np.arange(3), images[:3], compute)
    finally:
        trunk_cache._load_shards = real
    assert len(reads) == 1 and sum(calls) == 20
    memory = TrunkCache(None, "k")
    memory.outputs("pool", np.arange(10), images, compute)
    memory.outputs("pool", np.arange(5, 10), images[5:], compute)
    assert sum(calls) == 30 and memory.computed == 10 and memory.reused == 5


def _scores(run_dir):
    return np.load(run_dir / "scores.npz")["score"]


def test_a_cached_run_scores_what_an_uncached_run_scores(tmp_path):
    common = [*PRETRAINED, "backbone.freeze=5", "dataset.hflip=true", "trainer.deterministic=true"]
    results = {}
    for name, cache in (("cached", "true"), ("plain", "false")):
        cfg = _config(tmp_path / name, *common, f"backbone.cache_trunk={cache}")
        results[name] = train(cfg)
    cached, plain = tmp_path / "cached" / "run", tmp_path / "plain" / "run"
    np.testing.assert_allclose(_scores(cached), _scores(plain), rtol=1e-3, atol=1e-4)
    assert results["cached"] == pytest.approx(results["plain"], abs=1e-3)

    record = json.loads((cached / "metrics.json").read_text())
    assert record["data"]["inputs"] == "trunk"
    assert record["data"]["augmentation"] == "hflip (cached views)"
    assert record["trunk_cache"]["computed"] > 0
    assert json.loads((plain / "metrics.json").read_text())["trunk_cache"] is None


def _cache_key(tmp_path, *overrides):
    cfg = _config(tmp_path, *overrides)
    L.seed_everything(int(cfg.seed), verbose=False)
    dm = build_datamodule(cfg)
    dm.setup()
    embedder, info = build_embedder(cfg, dm)
    return use_trunk_cache(cfg, dm, embedder, info)["key"]


def test_a_random_trunk_is_never_shared_between_seeds(tmp_path):
    scratch = ["dataset.pad_crop=0", "backbone.freeze=2"]
    assert _cache_key(tmp_path, *scratch, "seed=0") != _cache_key(tmp_path, *scratch, "seed=1")
    pretrained = [*PRETRAINED, "backbone.freeze=2"]
    assert _cache_key(tmp_path, *pretrained, "seed=0") == _cache_key(
        tmp_path, *pretrained, "seed=1"
    )
    assert _cache_key(tmp_path, *pretrained) != _cache_key(
        tmp_path, *pretrained, "dataset.image_size=24"
    )


def test_pad_crop_keeps_the_trunk_running_per_batch(tmp_path):
    cfg = _config(tmp_path, *PRETRAINED, "backbone.freeze=5", "dataset.pad_crop=2")
    dm = build_datamodule(cfg)
    dm.setup()
    embedder, info = build_embedder(cfg, dm)
    assert use_trunk_cache(cfg, dm, embedder, info) is None and dm.inputs == "images"


@pytest.mark.parametrize("kind", ["pixels", "features"])
def test_baseline_scores_equal_an_independent_knn(tmp_path, kind):
    logger = "logger=csv" if kind == "pixels" else "logger=none"
    cfg = _config(
        tmp_path, *PRETRAINED, f"loss=baseline_{kind}", "scorer.k=3", "scorer.distance=l2", logger
    )
    train(cfg)
    auroc = json.loads((tmp_path / "run" / "metrics.json").read_text())["metrics"]["auroc"]
    dm = build_datamodule(cfg)
    dm.setup()
    if kind == "pixels":
        vec = {
            n: getattr(dm, n).reshape(len(getattr(dm, n)), -1).double() / 255
            for n in ("normal_images", "test_images")
        }
    else:
        model, _ = create_model("tf_efficientnet_lite0", 3, weights=cfg.backbone.weights)
        model.eval().to(memory_format=torch.channels_last)
        with torch.no_grad():
            vec = {
                n: model((getattr(dm, n).float() / 255 - 0.5) / 0.5).double()
                for n in ("normal_images", "test_images")
            }
    nn_ = NearestNeighbors(n_neighbors=3).fit(vec["normal_images"].numpy())
    expected = nn_.kneighbors(vec["test_images"].numpy())[0].mean(axis=1)
    np.testing.assert_allclose(_scores(tmp_path / "run"), expected, rtol=1e-3, atol=1e-4)
    from sklearn.metrics import roc_auc_score

    assert auroc == pytest.approx(roc_auc_score(dm.test_is_abnormal.numpy(), expected), abs=1e-3)

    record = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert record["baseline"] == kind and record["times"]["train_s"] == 0.0
    assert record["loss"] == f"baseline_{kind}"
    if kind == "pixels":  # logged like any run
        import csv

        with open(tmp_path / "run" / "csv" / "metrics.csv") as fh:
            (logged,) = list(csv.DictReader(fh))
        assert float(logged["test/auroc"]) == pytest.approx(auroc)
