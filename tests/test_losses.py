"""Each head's logits against its paper's formula, and against pytorch-metric-learning."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from adabench.errors import ConfigError
from adabench.losses import (
    AdaCosHead,
    ArcFaceHead,
    CosFaceHead,
    L2SoftmaxHead,
    SoftmaxHead,
    SphereFaceHead,
    adacos_fixed_scale,
)

from .conftest import compose_config, loss_head, loss_names


def _unit_weights(head):
    """Classes at 0°, 90°, 180° in 2-D."""
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]))
    return head


def _at(deg, norm=1.0):
    a = math.radians(deg)
    return torch.tensor([[norm * math.cos(a), norm * math.sin(a)]])


LABEL0 = torch.tensor([0])


def test_arcface_target_logit_is_s_cos_theta_plus_m():
    head = _unit_weights(ArcFaceHead(2, 3, scale=2.0, margin=0.5))
    logits = head.logits(_at(30, norm=5.0), LABEL0)[0]
    expected = [
        2 * math.cos(math.pi / 6 + 0.5),
        2 * math.cos(math.pi / 3),
        2 * math.cos(5 * math.pi / 6),
    ]
    assert logits.tolist() == pytest.approx(expected, abs=1e-5)
    # without labels (prediction): no margin
    assert head.logits(_at(30))[0, 0].item() == pytest.approx(2 * math.cos(math.pi / 6), abs=1e-6)


def test_arcface_keeps_decreasing_past_pi_minus_m():
    head = _unit_weights(ArcFaceHead(2, 3, scale=1.0, margin=0.5))
    logit = head.logits(_at(170), LABEL0)[0, 0].item()  # θ + m > π
    assert logit == pytest.approx(math.cos(math.radians(170)) - 0.5 * math.sin(0.5), abs=1e-5)


def test_cosface_target_logit_is_s_cos_minus_m():
    head = _unit_weights(CosFaceHead(2, 3, scale=3.0, margin=0.35))
    logits = head.logits(_at(30, norm=2.0), LABEL0)[0]
    expected = [3 * (math.cos(math.pi / 6) - 0.35), 3 * 0.5, 3 * math.cos(5 * math.pi / 6)]
    assert logits.tolist() == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize(
    ("deg", "psi"),
    [
        (30, -0.5),  # k = 0: cos(120°)
        (60, -1.5),  # k = 1: -cos(240°) - 2
        (120, -4.5),  # k = 2: cos(480°) - 4
        (0, 1.0),
    ],
)
def test_sphereface_psi_and_feature_norm(deg, psi):
    head = _unit_weights(SphereFaceHead(2, 3, margin=4, lambda_base=0.0))
    logits = head.logits(_at(deg, norm=3.0), LABEL0)[0]
    assert logits[0].item() == pytest.approx(3.0 * psi, abs=1e-4)
    assert logits[1].item() == pytest.approx(3.0 * math.cos(math.radians(90 - deg)), abs=1e-5)


def test_sphereface_annealing_blends_softmax_and_decays():
    head = _unit_weights(SphereFaceHead(2, 3, margin=4, lambda_base=1000, lambda_min=5, gamma=0.12))
    head.train()
    lam0 = head.current_lambda()
    assert lam0 == pytest.approx(1000.0)
    logit = head.logits(_at(30), LABEL0)[0, 0].item()
    assert logit == pytest.approx((1000 * math.cos(math.pi / 6) - 0.5) / 1001, abs=1e-5)
    assert head.current_lambda() == pytest.approx(1000 / 1.12)
    head.iteration.fill_(10**6)
    assert head.current_lambda() == 5.0


def test_l2softmax_scales_features_to_alpha():
    head = L2SoftmaxHead(2, 3, alpha=16.0)
    x = _at(30, norm=7.0)
    expected = head.fc.weight @ (16.0 * x[0] / x[0].norm()) + head.fc.bias
    assert torch.allclose(head.logits(x)[0], expected, atol=1e-5)
    assert torch.allclose(head.logits(x), head.logits(x * 100), atol=1e-4)


def test_softmax_is_linear_cross_entropy():
    head = SoftmaxHead(4, 3)
    x, y = torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1])
    assert torch.allclose(head(x, y), F.cross_entropy(head.fc(x), y))


def test_adacos_fixed_scale_for_nine_classes():
    assert adacos_fixed_scale(9) == pytest.approx(math.sqrt(2) * math.log(8))
    head = AdaCosHead(8, 9)
    assert head.scale.item() == pytest.approx(math.sqrt(2) * math.log(8), rel=1e-6)
    x = torch.randn(4, 8)
    assert torch.allclose(head.logits(x), head.scale * head.cosine(x))


def test_adacos_dynamic_update_matches_paper_formula():
    torch.manual_seed(0)
    head = AdaCosHead(6, 5, dynamic=True).train()
    x, y = torch.randn(7, 6), torch.tensor([0, 1, 2, 3, 4, 0, 1])  # odd N: unique median
    s_prev = head.scale.item()
    cos = head.cosine(x).detach().double().numpy()
    mask = np.eye(5, dtype=bool)[y.numpy()]
    b_avg = np.where(mask, 0.0, np.exp(s_prev * cos)).sum(1).mean()
    theta_med = np.median(np.arccos(cos[mask]))
    expected = math.log(b_avg) / math.cos(min(math.pi / 4, theta_med))
    logits = head.logits(x, y)
    assert head.scale.item() == pytest.approx(expected, rel=1e-5)
    assert torch.allclose(logits, head.scale * head.cosine(x), atol=1e-5)
    # no update in eval mode or without labels
    head.eval()
    head.logits(x, y)
    assert head.scale.item() == pytest.approx(expected, rel=1e-5)


def _pml_pair(name, pml_cls, pml_kwargs, **ours):
    torch.manual_seed(1)
    head = loss_head(name, 8, 5, **ours)
    ref = pml_cls(num_classes=5, embedding_size=8, **pml_kwargs)
    with torch.no_grad():
        ref.W.copy_(head.weight.t())
    return head, ref


@pytest.mark.parametrize(
    ("name", "pml_name", "pml_kwargs", "ours"),
    [
        ("arcface", "ArcFaceLoss", {"margin": math.degrees(0.5), "scale": 64}, {}),
        (
            "arcface",
            "ArcFaceLoss",
            {"margin": math.degrees(0.2), "scale": 10},
            {"scale": 10, "margin": 0.2},
        ),
        ("cosface", "CosFaceLoss", {"margin": 0.35, "scale": 64}, {}),
        ("cosface", "CosFaceLoss", {"margin": 0.1, "scale": 16}, {"scale": 16, "margin": 0.1}),
        ("sphereface", "SphereFaceLoss", {"margin": 4, "scale": 1}, {"lambda_base": 0.0}),
    ],
)
def test_loss_and_gradient_equal_pytorch_metric_learning(name, pml_name, pml_kwargs, ours):
    pml_losses = pytest.importorskip("pytorch_metric_learning.losses")
    head, ref = _pml_pair(name, getattr(pml_losses, pml_name), pml_kwargs, **ours)
    x = torch.randn(16, 8) * 3
    y = torch.randint(0, 5, (16,))
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    ours_loss, ref_loss = head(x1, y), ref(x2, y)
    ours_loss.backward()
    ref_loss.backward()
    assert ours_loss.item() == pytest.approx(ref_loss.item(), rel=1e-4, abs=1e-4)
    assert torch.allclose(x1.grad, x2.grad, rtol=1e-3, atol=1e-5)


def test_default_parameters_follow_the_papers():
    assert (ArcFaceHead(4, 3).scale, ArcFaceHead(4, 3).margin) == (64.0, 0.5)
    assert (CosFaceHead(4, 3).scale, CosFaceHead(4, 3).margin) == (64.0, 0.35)
    assert SphereFaceHead(4, 3).margin == 4


@pytest.mark.parametrize("name", loss_names())
def test_every_head_trains_its_class_weights(name):
    torch.manual_seed(0)
    head = loss_head(name, 8, 4).train()
    x, y = torch.randn(12, 8, requires_grad=True), torch.arange(12) % 4
    loss = head(x, y)
    if name in ("pml_triplet", "pml_multi_similarity", "ntxent"):  # no class weights to train
        assert list(head.parameters()) == [] and torch.isfinite(loss)
        return
    loss.backward()
    grads = [p.grad for p in head.parameters()]
    assert grads and all(
        g is not None and torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads
    )


def test_bad_head_config_names_value_and_choices():
    with pytest.raises(ConfigError, match="at least 3 training classes, got num_classes=2"):
        loss_head("adacos_fixed", 8, 2)
    with pytest.raises(ConfigError, match="embedding_dim must be a positive integer, got 0"):
        loss_head("softmax", 0, 4)
    with pytest.raises(
        ConfigError,
        match=r"loss.alpha is not a parameter of adabench.losses.margins.CosFaceHead. "
        r"Valid parameters: embedding_dim, num_classes, scale, margin",
    ):
        loss_head("cosface", 8, 4, alpha=3)
    with pytest.raises(ConfigError, match=r"loss._target_='adabench.losses.ArcFace' cannot be"):
        loss_head("arcface", 8, 4, _target_="adabench.losses.ArcFace")


def test_every_loss_option_is_named_after_its_file():
    for name in loss_names(baselines=True):
        assert compose_config(f"loss={name}", smoke=False).loss.name == name
