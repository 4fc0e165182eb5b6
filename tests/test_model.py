"""Embedder: pooled features, the neck on top, input scaling and memory format."""

from __future__ import annotations

import torch

from adabench.backbone import create_model
from adabench.embedder import Embedder


def _embedder(channels_last: bool) -> Embedder:
    torch.manual_seed(0)
    backbone = create_model("mobilenetv2_050", in_chans=1)[0]
    return Embedder(backbone, 8, mean=[0.3], std=[0.2], channels_last=channels_last).eval()


def test_embedding_is_the_neck_on_the_pooled_features():
    emb = _embedder(channels_last=False)
    images = torch.randint(0, 256, (4, 1, 28, 28), dtype=torch.uint8)
    with torch.no_grad():
        feats = emb.features(images)
        assert feats.shape == (4, emb.backbone.num_features)
        torch.testing.assert_close(emb(images), emb.neck(feats))
        # uint8 input is scaled to [0, 1] first, then normalised with the dataset's mean/std
        torch.testing.assert_close(emb.features(images.float() / 255.0), feats)
        expected = emb.backbone((images.float() / 255.0 - 0.3) / 0.2)
        torch.testing.assert_close(feats, expected)


def test_channels_last_changes_speed_not_results():
    a, b = _embedder(channels_last=False), _embedder(channels_last=True)
    b.load_state_dict(a.state_dict())
    images = torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(a(images), b(images), rtol=1e-4, atol=1e-5)
