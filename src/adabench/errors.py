"""Errors adabench raises for bad input, so callers and tests can tell them apart."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the value and the valid choices."""


class DataError(RuntimeError):
    """Data is missing, unreadable or does not match the configuration."""


class DivergedError(RuntimeError):
    """Training produced a non-finite loss or non-finite embeddings."""


def choices_hint(value: object, choices: Iterable[str], n: int = 5) -> str:
    """Return ``"did you mean: a, b?"`` for close matches of ``value`` in ``choices``, or ``""``."""
    close = difflib.get_close_matches(str(value), list(choices), n=n, cutoff=0.6)
    return f" Did you mean: {', '.join(close)}?" if close else ""


class RunPruned(Exception):
    """A tuner stopped the run after a periodic validation (``status: pruned``, not a failure).

    Args:
        epoch: The epoch whose validation decided it.
        value: The validation metric reported at that epoch.
    """

    def __init__(self, epoch: int, value: float) -> None:
        super().__init__(f"pruned after epoch {epoch} (validation {value:.4f})")
        self.epoch, self.value = epoch, value
