"""OmegaConf resolvers the configs use (registered before Hydra composes a config)."""

from __future__ import annotations

import hashlib

from omegaconf import OmegaConf


def digest(text: str, length: int = 6) -> str:
    """Short stable hash of ``text`` (e.g. a job's overrides, for unique sweep folder names)."""
    return hashlib.sha256(str(text).encode()).hexdigest()[:length]


def pair_part(pair: str, index: int) -> str | int:
    """Part ``index`` of a task pair ``normal-abnormal`` (``deer-horse``, ``7-9``).

    Task suites sweep one key, ``suite.pair``, so that each job is one normal/abnormal pair
    (a sweep over ``dataset.normal`` and ``dataset.abnormal`` would run every combination).
    """
    parts = str(pair).split("-")
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"suite.pair must look like normal-abnormal (deer-horse), got {pair!r}")
    part = parts[int(index)]
    return int(part) if part.isdigit() else part


def config_groups() -> str:
    """``--help``'s list of config groups and their options, one group a line.

    What Hydra's ``$APP_CONFIG_GROUPS`` lists, less Hydra's own groups and the files whose
    name starts with ``_`` (parts other options include, e.g. ``hparams_search/_budget``).
    """
    from pathlib import Path

    from adabench.config import config_dir

    root = Path(config_dir())
    lines = []
    for group in sorted(p for p in root.iterdir() if p.is_dir() and p.name != "hydra"):
        options = sorted(f.stem for f in group.glob("*.yaml") if not f.stem.startswith("_"))
        if options:
            lines.append(f"{group.name}: {', '.join(options)}")
    return "\n".join(lines)


def register() -> None:
    """Register ``${digest:...}``, ``${pair:...}`` and ``${config_groups:}``; safe to repeat."""
    OmegaConf.register_new_resolver("digest", digest, replace=True)
    OmegaConf.register_new_resolver("pair", pair_part, replace=True)
    OmegaConf.register_new_resolver("config_groups", config_groups, replace=True)
