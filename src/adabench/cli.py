"""Console scripts: ``adabench-train`` does what the repository's ``train.py`` does."""

from __future__ import annotations

import os
from pathlib import Path


def config_dir() -> str:
    """The config folder: ``$ADABENCH_CONFIG_DIR``, else ``./conf``, else the packaged copy."""
    env = os.environ.get("ADABENCH_CONFIG_DIR")
    if env:
        return str(Path(env).resolve())
    local = Path.cwd() / "conf" / "train.yaml"
    if local.exists():
        return str(local.parent.resolve())
    return str(Path(__file__).resolve().parent / "conf")


def train() -> None:
    """Entry point of ``adabench-train``."""
    import hydra
    from omegaconf import DictConfig

    from adabench.run import train as run_train

    @hydra.main(version_base="1.3", config_path=config_dir(), config_name="train")
    def main(cfg: DictConfig) -> float:
        return run_train(cfg)

    main()
