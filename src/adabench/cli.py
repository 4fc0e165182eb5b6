"""Console scripts: ``adabench-train`` (what ``train.py`` does) and ``adabench report``."""

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

    from adabench.resolvers import register
    from adabench.run import run_job

    register()

    @hydra.main(version_base="1.3", config_path=config_dir(), config_name="train")
    def main(cfg: DictConfig) -> float:
        return run_job(cfg)

    main()


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``adabench``: ``adabench report <sweep dir>…``."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "report":
        from adabench.report import main as report_main

        return report_main(args[1:])
    print(
        "usage: adabench report <sweep dir>... [--baseline softmax] [--metric auroc] [--wandb]\n"
        "       (training: adabench-train or python train.py)"
    )
    return 0 if args and args[0] in ("-h", "--help") else 2
