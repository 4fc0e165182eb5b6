"""Train one model (or sweep many with -m) and score anomalies: see README.md."""

import hydra
from omegaconf import DictConfig

from adabench.resolvers import register
from adabench.run import run_job

register()


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float:
    """Hydra entry point."""
    return run_job(cfg)


if __name__ == "__main__":
    main()
