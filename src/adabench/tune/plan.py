"""What ``adabench tune`` runs: the rows, each with its search space, on one budget and sampler.

A row is a loss (``loss=<name>``) or a no-training baseline; its study reads
``conf/hparams_search/<space>.yaml`` (the loss's own name, or its family's: ``adacos`` for both
AdaCos, ``features`` and ``pixels`` for the no-training rows). Everything but the space
(budget, sampler, pruner, the trial and test seeds) comes from ``_budget.yaml`` and must be
the same for every row: :func:`make_plan` refuses a row that changes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from adabench.config import config_dir
from adabench.errors import ConfigError

DEFAULT_LOSSES = ("softmax", "l2softmax", "arcface", "cosface", "adacos_fixed", "adacos_dynamic")
BASELINES = ("baseline_pixels", "baseline_features")
SPACE_OF = {
    "adacos_fixed": "adacos",
    "adacos_dynamic": "adacos",
    "baseline_pixels": "pixels",
    "baseline_features": "features",
}
SHARED = ("n_trials", "direction", "sampler", "pruner", "trial_seed", "test_seeds")


@dataclass(frozen=True)
class Row:
    """One row of the comparison and its study.

    Attributes:
        loss: The ``loss=`` option (a loss, or ``baseline_pixels`` / ``baseline_features``).
        space: The ``hparams_search`` file its search space comes from.
        settings: That file composed: ``params`` (the space) and the shared keys.
    """

    loss: str
    space: str
    settings: dict[str, Any] = field(repr=False)

    @property
    def params(self) -> dict[str, str]:
        """The search space as declared (``key: sweep expression``)."""
        return dict(self.settings.get("params") or {})

    @property
    def trains(self) -> bool:
        """Whether the row trains (a no-training row has no epochs to prune)."""
        return self.loss not in BASELINES


@dataclass(frozen=True)
class Plan:
    """Every row, what all their runs share, and where everything goes.

    Attributes:
        rows: The rows, each with its study.
        overrides: Overrides of every run (``experiment=…``, ``dataset.root=…``).
        task: The dataset's name (studies are ``<loss>-<task>``).
        work: Studies (``studies/<loss>``), re-runs (``test/<loss>``), defaults (``defaults/``).
        out: The report folder.
        storage: An RDB URL for every study, or ``None`` for each study's journal file.
        defaults: ``run`` (re-run each row's untuned config on the test seeds), ``none``, or a
            ``results.csv`` of the untuned rows.
    """

    rows: tuple[Row, ...]
    overrides: tuple[str, ...]
    task: str
    work: Path
    out: Path
    storage: str | None = None
    defaults: str = "run"

    @property
    def shared(self) -> dict[str, Any]:
        """What every row's study shares (budget, sampler, pruner, seeds)."""
        return {k: self.rows[0].settings[k] for k in SHARED}

    def study_name(self, row: Row) -> str:
        return f"{row.loss}-{self.task}"

    def study_dir(self, row: Row) -> Path:
        return self.work / "studies" / row.loss


def space_of(loss: str) -> str:
    """The ``hparams_search`` file of a row (its own name when there is one)."""
    return SPACE_OF.get(loss, loss)


def load_row(loss: str, space: str, search_overrides: list[str]) -> Row:
    """Compose ``conf/hparams_search/<space>.yaml`` (with ``_budget`` and its pruner)."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import MissingConfigException

    with initialize_config_dir(config_dir(), version_base="1.3"):
        try:
            cfg = compose(f"hparams_search/{space}", overrides=search_overrides)
        except MissingConfigException:
            options = sorted(
                p.stem
                for p in (Path(config_dir()) / "hparams_search").glob("*.yaml")
                if not p.stem.startswith("_")
            )
            raise ConfigError(
                f"no search space for loss={loss}: conf/hparams_search/{space}.yaml does not "
                f"exist (spaces: {', '.join(options)}); add one (defaults: [_budget, _training]) "
                f"or pass --space {loss}=<one of them>"
            ) from None
    settings = OmegaConf.to_container(cfg.hparams_search, resolve=True)
    assert isinstance(settings, dict)
    return Row(loss, space, settings)


def check_equal_terms(rows: list[Row]) -> None:
    """Refuse rows whose studies would not share budget, sampler, pruner and seeds."""
    first = rows[0]
    for row in rows[1:]:
        for key in SHARED:
            if row.settings.get(key) != first.settings.get(key):
                raise ConfigError(
                    f"hparams_search/{row.space}.yaml sets {key}={row.settings.get(key)!r}, "
                    f"but {first.space}.yaml has {first.settings.get(key)!r}: every row gets "
                    "the same budget, sampler, pruner and seeds; set it in _budget.yaml"
                )
    seeds, trial_seed = list(first.settings["test_seeds"]), first.settings["trial_seed"]
    if trial_seed in seeds or len(set(seeds)) != len(seeds) or not seeds:
        raise ConfigError(
            f"test_seeds={seeds}: the test re-runs need distinct seeds that no trial used "
            f"(the trials train at trial_seed={trial_seed}); e.g. --test-seeds 1 2 3 4 5"
        )


def make_plan(
    losses: list[str],
    overrides: list[str],
    search_overrides: list[str],
    spaces: dict[str, str] | None = None,
    **where: Any,
) -> Plan:
    """The plan for ``losses`` (plus the no-training rows when not named) on ``overrides``."""
    from adabench.tune.runs import compose_run

    spaces = spaces or {}
    rows = [load_row(x, spaces.get(x) or space_of(x), search_overrides) for x in losses]
    check_equal_terms(rows)
    task = str(compose_run(overrides).dataset.name)
    return Plan(rows=tuple(rows), overrides=tuple(overrides), task=task, **where)
