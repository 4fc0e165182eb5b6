"""From a config node to an object: the one way every group is built (``_target_``).

Every config group that builds something — dataset source, loss head or no-training baseline,
scorer, optimizer, scheduler, trainer, logger — names its class (or function) with
``_target_`` (a dotted import path, as in Hydra) and lists its constructor's parameters beside
it. :func:`build` imports the target, checks the parameters against its signature and calls it
with them plus what only the run knows (e.g. ``num_classes``). So a new loss, dataset or scorer
is one class and one YAML file; a class defined anywhere importable (a test file, a user's
package) works without touching adabench.

Two keys are not passed: ``name``, the row's label in results and run folders (it equals the
YAML file's name), and ``_partial_: true``, which returns a :func:`functools.partial` to be
called later with the rest (an optimizer needs the parameters first). Nested nodes with their own
``_target_`` are built first, so a loss can take a regularizer object. Kept free of Hydra, so
benchmarks and tests build from plain dicts too.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import os
import types
import typing
from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

from adabench.errors import ConfigError, choices_hint

TARGET = "_target_"
_NOT_PASSED = frozenset({"name", TARGET, "_partial_"})


def as_dict(node: Mapping[str, Any] | DictConfig | None) -> dict[str, Any]:
    """A config node as a plain, resolved ``dict`` (``{}`` for ``None``)."""
    if node is None:
        return {}
    if isinstance(node, DictConfig):
        return OmegaConf.to_container(node, resolve=True)  # type: ignore[return-value]
    return dict(node)


def target_of(node: Mapping[str, Any] | DictConfig, group: str = "config") -> Any:
    """Import the class or function that ``node[_target_]`` names.

    Raises:
        ConfigError: no ``_target_``, or it cannot be imported; names the group and the path.
    """
    path = as_dict(node).get(TARGET)
    if not path or not isinstance(path, str):
        raise ConfigError(f"{group} has no {TARGET} (the class to build), got {path!r}.")
    module_name, _, attr = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as err:
        raise ConfigError(
            f"{group}.{TARGET}={path!r} cannot be imported ({type(err).__name__}: {err})."
        ) from err


def check_parameters(target: Any, params: Mapping[str, Any], group: str) -> None:
    """Raise :class:`ConfigError` naming any key ``target`` does not accept, and the valid ones."""
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):  # builtins without a signature: let the call decide
        return
    if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        return
    valid = [n for n, p in sig.parameters.items() if p.kind is not p.VAR_POSITIONAL]
    unknown = sorted(set(params) - set(valid))
    if unknown:
        hint = choices_hint(unknown[0], valid)
        raise ConfigError(
            f"{group}.{unknown[0]} is not a parameter of {_qualname(target)}. Valid parameters: "
            f"{', '.join(valid)}.{hint}"
        )


_EXAMPLE_OF = {int: "10", float: "0.5", bool: "true", str: "name"}
_KIND = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def _accepts(kind: Any, value: Any) -> bool | None:
    """Whether ``value`` fits the annotation ``kind`` (``None``: not a type this checks)."""
    if kind is Any:
        return True
    if kind is type(None):
        return value is None
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        verdicts = [_accepts(k, value) for k in typing.get_args(kind)]
        return True if any(verdicts) else (None if None in verdicts else False)
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is str:
        return isinstance(value, str)
    return None  # containers, classes, callables: the constructor decides


def _hints(target: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(target.__init__ if inspect.isclass(target) else target)
    except Exception:  # noqa: BLE001 - unresolvable annotations: nothing to check against
        return {}


def check_types(target: Any, params: Mapping[str, Any], group: str) -> None:
    """Raise :class:`ConfigError` for a value whose type its constructor's annotation refuses.

    The message names the key, the value, what is expected and an example, e.g.
    ``loss.margin='abc' must be a number (float), e.g. loss.margin=0.5``. Only plain
    annotations (``int``, ``float``, ``bool``, ``str``, ``None`` and unions of them) are
    checked; anything else is left to the constructor.
    """
    hints = _hints(target)
    try:
        defaults = {
            n: p.default
            for n, p in inspect.signature(target).parameters.items()
            if p.default is not p.empty
        }
    except (TypeError, ValueError):
        defaults = {}
    for key, value in params.items():
        kind = hints.get(key)
        if kind is None or _accepts(kind, value) is not False:
            continue
        plain = [k for k in (typing.get_args(kind) or (kind,)) if k in _KIND]
        expected = " or ".join(_KIND[k] for k in plain) or str(kind)
        if type(None) in typing.get_args(kind):
            expected += " or null"
        default = defaults.get(key)
        if default is None:
            default = _EXAMPLE_OF.get(plain[0] if plain else str, "<value>")
        raise ConfigError(
            f"{group}.{key}={_yaml(value, repr)} must be {expected}, "
            f"e.g. {group}.{key}={_yaml(default, str)}"
        )


def _yaml(value: Any, other: Any) -> str:
    """``value`` as it is written on the command line: booleans as ``true`` / ``false``."""
    return str(value).lower() if isinstance(value, bool) else other(value)


def build(node: Mapping[str, Any] | DictConfig, *args: Any, where: str = "config", **context: Any):
    """Build the object ``node`` describes: ``target(*args, **context, **parameters)``.

    Args:
        node: A config node with ``_target_`` (a DictConfig or a plain mapping).
        *args: Positional arguments only the caller has (e.g. an embedder).
        where: The node's place in the config, for error messages (``loss``, ``scorer``, …).
        **context: Keyword arguments only the caller has (e.g. ``num_classes``); the config may
            not set them too.

    Raises:
        ConfigError: bad target, unknown parameter, or a parameter the constructor rejects.
    """
    spec = as_dict(node)
    target = target_of(spec, where)
    params = {k: _built(v, f"{where}.{k}") for k, v in spec.items() if k not in _NOT_PASSED}
    clash = sorted(set(params) & set(context))
    if clash:
        raise ConfigError(f"{where}.{clash[0]} is set by adabench at run time; remove it.")
    check_parameters(target, {**params, **context}, where)
    check_types(target, params, where)
    if spec.get("_partial_"):
        return functools.partial(target, *args, **context, **params)
    try:
        return target(*args, **context, **params)
    except (TypeError, ValueError) as err:
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(f"Bad {where} for {_qualname(target)}: {err}") from err


def _built(value: Any, where: str) -> Any:
    if isinstance(value, Mapping) and TARGET in value:
        return build(value, where=where)
    if isinstance(value, list):
        return [_built(v, where) for v in value]
    return value


def _qualname(target: Any) -> str:
    return f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', target)}"


EXAMPLES = {  # what a required value looks like, for the error message
    "dataset.root": "/data/parts",
    "dataset.normal": "ok",
    "dataset.abnormal": "scratch",
}


# Values checked before torch or Lightning load (a refusal in about a second), as
# (key, rule, what is expected, an example). The scorer's ``k`` against the number of normal
# images, class names and other checks that need the data run when the data is read.
_NUMBER = (int, float)


def _positive_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 1


def _positive_number(v: Any) -> bool:
    return isinstance(v, _NUMBER) and not isinstance(v, bool) and v > 0


VALUE_RULES: tuple[tuple[str, Any, str, str], ...] = (
    (
        "trainer.max_epochs",
        _positive_int,
        "a positive integer (Lightning reads -1 as unlimited: it would train forever)",
        "trainer.max_epochs=10",
    ),
    ("batch_size", _positive_int, "a positive integer", "batch_size=128"),
    ("eval_batch_size", _positive_int, "a positive integer", "eval_batch_size=512"),
    ("seed", lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer", "seed=0"),
    ("optimizer.lr", _positive_number, "a positive number", "optimizer.lr=0.001"),
    ("backbone.embedding_dim", _positive_int, "a positive integer", "backbone.embedding_dim=128"),
    (
        "dataset.image_size",
        lambda v: _positive_int(v) and v >= 8,
        "an integer >= 8",
        "dataset.image_size=32",
    ),
    (
        "dataset.channels",
        lambda v: v in (1, 3) and not isinstance(v, bool),
        "1 or 3",
        "dataset.channels=3",
    ),
    (
        "dataset.on_corrupt",
        lambda v: v in ("error", "skip"),
        "error or skip",
        "dataset.on_corrupt=skip",
    ),
    ("scorer.k", _positive_int, "a positive integer", "scorer.k=5"),
    (
        "scorer.distance",
        lambda v: v in ("cosine", "l2"),
        "one of cosine, l2",
        "scorer.distance=cosine",
    ),
    (
        "ema_decay",
        lambda v: isinstance(v, _NUMBER) and 0.0 < float(v) < 1.0,
        "a number in (0, 1), or null (off)",
        "ema_decay=0.99",
    ),
)


def check_values(cfg: DictConfig) -> None:
    """Refuse values of the wrong type or range before anything is built or imported.

    Each rule of :data:`VALUE_RULES` applies where its key is set (``null`` means "the
    default" and is left to the code that reads it); the error names the key, the value, what
    is expected and an example.
    """
    for key, ok, expected, example in VALUE_RULES:
        value = OmegaConf.select(cfg, key, default=None, throw_on_missing=False)
        if value is not None and not ok(value):
            raise ConfigError(f"{key}={value!r} must be {expected}, e.g. {example}")


def check_required(cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` naming every required value (``???``) left unset."""
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        example = " ".join(f"{k}={EXAMPLES.get(k, '<value>')}" for k in missing)
        raise ConfigError(
            f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} required and not set; "
            f"add {'it' if len(missing) == 1 else 'them'} to the command, e.g. {example}"
        )


def config_dir() -> str:
    """The config folder: ``$ADABENCH_CONFIG_DIR``, else ``./conf``, else the packaged copy."""
    from pathlib import Path

    env = os.environ.get("ADABENCH_CONFIG_DIR")
    if env:
        return str(Path(env).resolve())
    local = Path.cwd() / "conf" / "train.yaml"
    if local.exists():
        return str(local.parent.resolve())
    return str(Path(__file__).resolve().parent / "conf")
