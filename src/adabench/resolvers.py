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


def register() -> None:
    """Register ``${digest:...}`` and ``${pair:...}``; safe to call more than once."""
    OmegaConf.register_new_resolver("digest", digest, replace=True)
    OmegaConf.register_new_resolver("pair", pair_part, replace=True)
