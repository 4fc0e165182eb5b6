"""Whether W&B can log online here, and in which mode a run or report logs (no Lightning)."""

from __future__ import annotations

import netrc
import os
from pathlib import Path

from adabench.errors import ConfigError


def wandb_api_key_available() -> bool:
    """True when W&B can authenticate without prompting (env var or ~/.netrc entry)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        auth = netrc.netrc().authenticators(
            os.environ.get("WANDB_BASE_URL", "api.wandb.ai")
            .removeprefix("https://")
            .removeprefix("http://")
        )
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False
    return bool(auth and auth[2])


WANDB_MODES = ("auto", "online", "offline", "disabled")


def wandb_mode(mode: str = "auto", announce_in: Path | None = None) -> str:
    """The W&B mode to run in.

    ``auto`` follows ``$WANDB_MODE`` when set, else runs online with an API key and offline
    without one (saying so in one line when ``announce_in`` is given).

    Raises:
        ConfigError: ``mode`` is not one of :data:`WANDB_MODES`.
    """
    if mode not in WANDB_MODES:
        raise ConfigError(f"logger.mode must be one of {', '.join(WANDB_MODES)}, got {mode!r}.")
    if mode != "auto":
        return mode
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    if wandb_api_key_available():
        return "online"
    if announce_in is not None:
        print(
            f"W&B: no API key found (WANDB_API_KEY or `wandb login`); logging offline to "
            f"{announce_in / 'wandb'} — upload later with `wandb sync {announce_in / 'wandb'}`."
        )
    return "offline"
