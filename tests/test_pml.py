"""pytorch-metric-learning losses through the head interface, and SimCLR's NT-Xent."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from pytorch_metric_learning import losses as pml_losses
from pytorch_metric_learning import miners, regularizers

from adabench.errors import ConfigError
from adabench.losses import PMLHead
from adabench.losses.ntxent import nt_xent
from adabench.run import train

from .conftest import compose_config, loss_head


def _batch(n=24, d=8, classes=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g) * 2, torch.arange(n) % classes


def test_a_classification_style_loss_is_built_with_the_runs_sizes_and_equals_pml():
    head = loss_head("pml_arcface", 8, 4)
    assert isinstance(head.loss, pml_losses.ArcFaceLoss) and head.loss.W.shape == (8, 4)
    ref = pml_losses.ArcFaceLoss(num_classes=4, embedding_size=8, margin=28.6, scale=64)
    with torch.no_grad():
        ref.W.copy_(head.loss.W)
    x, y = _batch()
    assert head(x, y).item() == pytest.approx(ref(x, y).item(), rel=1e-6)
    assert head.logits(x).shape == (24, 4)  # the loss's own margin-free logits
    assert {n for n, _ in head.named_parameters()} == {"loss.W"}  # trained with the rest


def test_regularizers_take_effect():
    x, y = _batch()
    plain = loss_head("pml_arcface", 8, 4)
    for name in ("pml_arcface_center_invariant", "pml_arcface_regularface"):
        reg = loss_head(name, 8, 4)
        with torch.no_grad():
            reg.loss.W.copy_(plain.loss.W)
        assert reg.loss.weight_regularizer is not None
        assert reg(x, y).item() != pytest.approx(plain(x, y).item(), rel=1e-4), name
    direct = pml_losses.ArcFaceLoss(
        4, 8, margin=28.6, scale=64, weight_regularizer=regularizers.CenterInvariantRegularizer()
    )
    reg = loss_head("pml_arcface_center_invariant", 8, 4)
    with torch.no_grad():
        direct.W.copy_(reg.loss.W)
    assert reg(x, y).item() == pytest.approx(direct(x, y).item(), rel=1e-6)


def test_a_pair_loss_uses_its_miner_and_has_no_logits():
    head = loss_head("pml_triplet", 8, 4)
    assert isinstance(head.miner, miners.TripletMarginMiner)
    x, y = _batch()
    ref_loss = pml_losses.TripletMarginLoss(margin=0.1)
    ref_miner = miners.TripletMarginMiner(margin=0.1, type_of_triplets="semihard")
    expected = ref_loss(x, y, ref_miner(x, y))
    assert head(x, y).item() == pytest.approx(expected.item(), rel=1e-6)
    assert head.logits(x) is None and list(head.parameters()) == []


def test_a_bad_pml_node_is_named():
    with pytest.raises(ConfigError, match="loss.loss must be a pytorch-metric-learning loss"):
        PMLHead(8, 4, loss=3)


@pytest.mark.parametrize("name", ["pml_arcface", "pml_proxy_anchor", "pml_triplet"])
def test_three_families_detect_anomalies_above_chance_on_digits(tmp_path, name):
    """Classification-style, proxy, and pair + miner: each from the command line alone."""
    cfg = compose_config(
        f"loss={name}",
        "trainer.max_epochs=4",
        "logger=none",
        "trainer.enable_progress_bar=false",
        f"paths.output_dir={tmp_path}",
    )
    train(cfg)
    assert json.loads((tmp_path / "metrics.json").read_text())["metrics"]["auroc"] > 0.6


def _nt_xent_reference(z1: np.ndarray, z2: np.ndarray, tau: float) -> float:
    """SimCLR's Eq. 1, written out with loops in float64."""
    z = np.concatenate([z1, z2]).astype(np.float64)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    n2, n = len(z), len(z1)
    total = 0.0
    for i in range(n2):
        j = (i + n) % n2
        denom = sum(math.exp(z[i] @ z[k] / tau) for k in range(n2) if k != i)
        total += -math.log(math.exp(z[i] @ z[j] / tau) / denom)
    return total / n2


@pytest.mark.parametrize("tau", [0.1, 0.5])
def test_nt_xent_equals_the_paper_and_pml(tau):
    z1, z2 = _batch(10, 6, seed=1)[0], _batch(10, 6, seed=2)[0]
    ours = nt_xent(z1, z2, tau).item()
    assert ours == pytest.approx(_nt_xent_reference(z1.numpy(), z2.numpy(), tau), rel=1e-5)
    labels = torch.arange(10).repeat(2)  # the two views of an image share a label
    pml = pml_losses.NTXentLoss(temperature=tau)(torch.cat([z1, z2]), labels)
    assert ours == pytest.approx(pml.item(), rel=1e-5)
    with pytest.raises(ConfigError, match="temperature must be > 0"):
        nt_xent(z1, z2, 0.0)
