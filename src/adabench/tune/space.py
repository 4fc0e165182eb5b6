"""A row's search space: ``conf/hparams_search/<name>.yaml`` as Optuna distributions.

The files declare each dimension in Hydra's sweep grammar (lightning-hydra-template's
``hparams_search`` convention): ``choice(a, b)``, ``interval(lo, hi)``,
``int(interval(lo, hi))``, ``range(lo, hi[, step])`` and ``tag(log, interval(lo, hi))``. Hydra's
own parser reads them; nothing here is a second grammar.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from adabench.errors import ConfigError


def distribution(key: str, text: str) -> BaseDistribution:
    """The Optuna distribution of one declared dimension (``key: text``).

    Raises:
        ConfigError: ``text`` is not a sweep (a plain value, or a grammar error).
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep
    from hydra.errors import OverrideParseException

    try:
        (override,) = OverridesParser.create().parse_overrides([f"{key}={text}"])
    except OverrideParseException as err:
        raise ConfigError(f"search space {key}: {text!r} does not parse ({err})") from None
    sweep, log = override.value(), "log" in getattr(override.value(), "tags", set())
    if isinstance(sweep, ChoiceSweep):
        return CategoricalDistribution([_plain(v) for v in sweep.list])
    if isinstance(sweep, RangeSweep):
        values = list(override.sweep_iterator())
        if all(isinstance(v, int) for v in values) and len(values) > 1:
            return IntDistribution(min(values), max(values), step=values[1] - values[0])
        return CategoricalDistribution(values)
    if isinstance(sweep, IntervalSweep):
        lo, hi = sweep.start, sweep.end
        if isinstance(lo, int) and isinstance(hi, int):
            return IntDistribution(lo, hi, log=log)
        return FloatDistribution(float(lo), float(hi), log=log)
    raise ConfigError(
        f"search space {key}: {text!r} is one value, not a range; write choice(...), "
        "interval(lo, hi) or tag(log, interval(lo, hi))"
    )


def _plain(value: Any) -> Any:
    return value if value is None or isinstance(value, bool | int | float | str) else str(value)


def search_space(params: Mapping[str, Any]) -> dict[str, BaseDistribution]:
    """Every declared dimension of a row's ``params`` as a distribution."""
    return {str(k): distribution(str(k), str(v)) for k, v in params.items()}


def as_overrides(params: Mapping[str, Any]) -> list[str]:
    """``key=value`` overrides for a trial's parameters (Hydra's syntax for each value)."""
    return [f"{k}={_override_value(v)}" for k, v in params.items()]


def _override_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return repr(value)
    return str(value)
