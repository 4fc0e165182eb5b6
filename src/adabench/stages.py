"""Stages of a timm backbone: a frozen trunk, a trainable rest, an early exit.

A backbone is split, when asked, into a **trunk** (the frozen stem + first ``freeze`` stages, in
eval mode, whose outputs can be cached) and the trainable **rest** (remaining stages, the final
convolution, global pooling). ``out_stage`` ends the backbone after that many stages (pooled
features from a middle stage). Stages are the model's stage container (``blocks``, ``stages``,
``layers``, ``features``) or its ``layerN`` / ``stageN`` children; a split is checked once
against the model's own forward so a model whose forward is not a plain sequence of its
children is refused with a clear message instead of computing something else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from adabench.errors import ConfigError

_CONTAINERS = ("blocks", "stages", "layers", "features")
_HEAD_PARTS = ("global_pool", "head_drop", "classifier", "fc", "head", "flatten")


@dataclass
class StageLayout:
    """The modules ``forward_features`` runs, in order: stem, stages, final (e.g. conv_head)."""

    stem: list[nn.Module] = field(default_factory=list)
    stages: list[nn.Module] = field(default_factory=list)
    final: list[nn.Module] = field(default_factory=list)
    pool: nn.Module | None = None


def stage_layout(model: nn.Module) -> StageLayout:
    """Split a timm model's children into stem, stages and final modules.

    Raises:
        ConfigError: the model has no recognisable stages.
    """
    layout = StageLayout(pool=getattr(model, "global_pool", None))
    seen_stages = False
    for name, child in model.named_children():
        if name in _HEAD_PARTS:
            continue
        if name in _CONTAINERS and isinstance(child, nn.Sequential):
            layout.stages.extend(child.children())
            seen_stages = True
        elif name.rstrip("0123456789") in ("layer", "stage") and name[-1].isdigit():
            layout.stages.append(child)
            seen_stages = True
        elif seen_stages:
            layout.final.append(child)
        else:
            layout.stem.append(child)
    if not layout.stages or layout.pool is None:
        raise ConfigError(
            f"Cannot find the stages of {type(model).__name__}: backbone.freeze and "
            "backbone.out_stage work with CNNs whose stages are a 'blocks'/'stages'/'layers' "
            "container or layerN children (EfficientNet, MobileNet, ResNet, ConvNeXt, …)."
        )
    return layout


class Pooled(nn.Module):
    """Run ``modules`` in order, then global-average-pool to ``[N, C]``."""

    def __init__(self, modules: list[nn.Module], pool: nn.Module | None = None) -> None:
        super().__init__()
        self.body = nn.Sequential(*modules)
        self.pool = pool if pool is not None else nn.Sequential(nn.AdaptiveAvgPool2d(1))
        self.flatten = nn.Flatten(1)

    def forward(self, x: Tensor) -> Tensor:
        return self.flatten(self.pool(self.body(x)))


@dataclass
class SplitBackbone:
    """A backbone as ``rest(trunk(x))``: ``trunk`` frozen (or ``None``), ``rest`` trainable."""

    trunk: nn.Module | None
    rest: nn.Module
    num_features: int
    frozen_stages: int | str
    out_stage: int | None


def _parse_freeze(freeze: Any, n_stages: int) -> int | str:
    if freeze in (None, False, 0, "0", "none"):
        return 0
    if freeze in ("all", True, -1, "-1"):
        return "all"
    try:
        n = int(freeze)
    except (TypeError, ValueError):
        n = -2
    if not 0 <= n <= n_stages:
        raise ConfigError(
            f"backbone.freeze must be 0 (train everything), 1..{n_stages} (freeze the stem and "
            f"that many stages) or 'all', got {freeze!r}."
        )
    return n


def split_backbone(
    model: nn.Module, freeze: Any = 0, out_stage: int | None = None
) -> SplitBackbone:
    """Split ``model`` (created with ``num_classes=0``) into a frozen trunk and trainable rest.

    Args:
        model: timm model returning pooled features.
        freeze: ``0`` train all, ``N`` freeze the stem and first N stages, ``"all"`` freeze all.
        out_stage: End after this many stages (pooled features of a middle stage); negative:
            counted from the end (``-1``: every stage, ``-2``: all but the last); ``None``: the
            whole backbone with its final layers.

    Raises:
        ConfigError: bad ``freeze``/``out_stage`` or a model that cannot be split.
    """
    default = int(getattr(model, "num_features", 0) or 0)
    if freeze in (None, False, 0, "0", "none") and out_stage is None:
        return SplitBackbone(None, model, default, 0, None)
    layout = stage_layout(model)
    n = len(layout.stages)
    if out_stage is not None and -n <= int(out_stage) <= -1:
        out_stage = n + 1 + int(out_stage)  # counted from the end: -1 is the last stage
    if out_stage is not None and not 1 <= int(out_stage) <= n:
        raise ConfigError(
            f"backbone.out_stage must be null, 1..{n} or -{n}..-1 (from the end), got {out_stage}."
        )
    end = n if out_stage is None else int(out_stage)
    frozen = _parse_freeze(freeze, n)
    stages = layout.stages[:end]
    final = layout.final if out_stage is None else []
    pool = layout.pool if out_stage is None else None
    whole = [*layout.stem, *stages, *final]
    if frozen == "all" or frozen >= end:
        trunk: nn.Module | None = Pooled(whole, pool)
        rest: nn.Module = nn.Identity()
        frozen = "all" if out_stage is None else frozen
    else:
        k = len(layout.stem) + int(frozen) if frozen else 0
        trunk = nn.Sequential(*whole[:k]) if k else None
        rest = Pooled(whole[k:], pool)
    _check_split(model, trunk, rest, out_stage is None)
    if trunk is not None:
        trunk.requires_grad_(False)
        trunk.eval()
    num = default if out_stage is None else _probe_channels(trunk, rest)
    return SplitBackbone(trunk, rest, num, frozen, None if out_stage is None else int(out_stage))


@torch.no_grad()
def _run(trunk: nn.Module | None, rest: nn.Module, x: Tensor) -> Tensor:
    return rest(trunk(x) if trunk is not None else x)


def _probe_input(model: nn.Module) -> Tensor:
    first = next(p for p in model.parameters() if p.dim() == 4)
    return torch.randn(2, first.shape[1], 64, 64, generator=torch.Generator().manual_seed(0))


def _check_split(model: nn.Module, trunk: nn.Module | None, rest: nn.Module, full: bool) -> None:
    """The split must compute what the model computes (only checked for the full depth)."""
    if not full:
        return
    was = model.training
    model.eval()
    try:
        x = _probe_input(model)
        with torch.no_grad():
            expected = model(x)
        got = _run(trunk, rest, x)
    finally:
        model.train(was)
    if got.shape != expected.shape or not torch.allclose(got, expected, rtol=1e-4, atol=1e-5):
        raise ConfigError(
            f"{type(model).__name__} cannot be split into stages (its forward is not the plain "
            "sequence of its children); use backbone.freeze=0 and backbone.out_stage=null."
        )


def _probe_channels(trunk: nn.Module | None, rest: nn.Module) -> int:
    mods = [m for m in (trunk, rest) if m is not None]
    model = nn.Sequential(*mods)
    was = [m.training for m in mods]
    model.eval()
    try:
        return int(_run(trunk, rest, _probe_input(model)).shape[1])
    finally:
        for m, w in zip(mods, was, strict=True):
            m.train(w)
