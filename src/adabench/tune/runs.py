"""The runs of a tuning study: each composed by Hydra's compose API and run by ``train.py``'s code.

A trial is :func:`adabench.run.train` on the config that ``train.py`` would compose from the
same overrides, in a folder named as a sweep names its jobs (``<run_name>-<digest of the
overrides>``), with the same ``metrics.json``, ``scores.npz``, ``split.json``, ``train.log`` and
``.hydra/overrides.yaml``; resume finds a run that already completed anywhere in the folder.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from adabench.config import config_dir
from adabench.context import RunContext
from adabench.resolvers import digest, register


@dataclass(frozen=True)
class RunSpec:
    """One run of a study: its overrides (the common ones first) and where it goes.

    Attributes:
        overrides: Every override, as on ``train.py``'s command line.
        folder: The sweep-like folder the run's own folder goes into.
        group: The W&B group (the study) and report title.
    """

    overrides: tuple[str, ...]
    folder: Path
    group: str


def compose_run(overrides: list[str] | tuple[str, ...]) -> DictConfig:
    """``train.py``'s config for ``overrides`` (Hydra's compose API, the same config folder)."""
    from hydra import compose, initialize_config_dir

    register()
    with initialize_config_dir(config_dir(), version_base="1.3"):
        cfg = compose("train", overrides=list(overrides))
    return cfg


def run_dir_of(spec: RunSpec, cfg: DictConfig) -> Path:
    """The run's folder: ``<folder>/<run_name>-<digest of its overrides>``, as a sweep names it."""
    name = OmegaConf.select(cfg, "run_name")
    return spec.folder / f"{name}-{digest(','.join(sorted(spec.overrides)))}"


def execute(
    spec: RunSpec, on_validation: Callable[[int, dict[str, float]], None] | None = None
) -> tuple[Path, float]:
    """Run ``spec`` as ``train.py`` would (resumable); its folder and validation value.

    Raises what the run raised (recorded in its ``metrics.json`` first), including
    :class:`adabench.errors.RunPruned` when ``on_validation`` stops it.
    """
    from adabench.run import train

    cfg = compose_run(spec.overrides)
    run_dir = run_dir_of(spec, cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(run_dir)
        cfg.trainer.enable_progress_bar = False  # the study prints one line per trial
    ctx = RunContext(
        output_dir=run_dir,
        cwd=Path.cwd(),
        sweep_dir=spec.folder,
        group=spec.group,
        on_validation=on_validation,
    )
    _write_overrides(run_dir, spec.overrides, cfg)
    with _run_log(run_dir):
        value = train(cfg, ctx)
    return run_dir, float(value) if value is not None else math.nan


def _write_overrides(run_dir: Path, overrides: tuple[str, ...], cfg: DictConfig) -> None:
    """``.hydra/overrides.yaml`` and ``config.yaml``, as a Hydra job writes them."""
    from adabench.files import atomic_write

    hydra_dir = run_dir / ".hydra"
    hydra_dir.mkdir(parents=True, exist_ok=True)
    text = OmegaConf.to_yaml(OmegaConf.create(list(overrides)))
    atomic_write(hydra_dir / "overrides.yaml", lambda p: Path(p).write_text(text))
    atomic_write(hydra_dir / "config.yaml", lambda p: OmegaConf.save(cfg, p))


@contextmanager
def _run_log(run_dir: Path) -> Iterator[None]:
    """``train.log`` in the run folder for the run's duration (Hydra's job logging does it)."""
    from adabench.console import QuietFileHandler

    handler = QuietFileHandler(str(run_dir / "train.log"))
    handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        handler.close()
