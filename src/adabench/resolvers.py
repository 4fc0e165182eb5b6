"""OmegaConf resolvers the configs use (registered before Hydra composes a config)."""

from __future__ import annotations

import hashlib

from omegaconf import OmegaConf


def digest(text: str, length: int = 6) -> str:
    """Short stable hash of ``text`` (e.g. a job's overrides, for unique sweep folder names)."""
    return hashlib.sha256(str(text).encode()).hexdigest()[:length]


def register() -> None:
    """Register ``${digest:...}``; safe to call more than once."""
    OmegaConf.register_new_resolver("digest", digest, replace=True)
