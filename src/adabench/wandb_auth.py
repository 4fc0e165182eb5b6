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
        chosen, why = mode, f"logger.mode={mode}"
    elif os.environ.get("WANDB_MODE"):
        chosen, why = os.environ["WANDB_MODE"], f"WANDB_MODE={os.environ['WANDB_MODE']}"
    elif wandb_api_key_available():
        chosen, why = "online", ""
    else:
        chosen, why = "offline", "no API key found (WANDB_API_KEY or `wandb login`)"
    if chosen == "offline" and announce_in is not None:
        where = announce_in / "wandb"
        print(
            f"W&B: {why}; logging offline to {where} — upload later with "
            f"`wandb sync {where}/offline-run-*`."
        )
    return chosen
