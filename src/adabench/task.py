"""What a task is: dataset + protocol + which classes are normal, abnormal and reference.

Runs of one task differ only by seed (or by the loss configuration under test); the report
pairs and ranks within a task and never merges two tasks, and W&B runs carry the task as a
config column to group and filter by.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def _classes(value: Any) -> str:
    if value is None:
        return "rest"
    if isinstance(value, str | int):
        return str(value)
    if isinstance(value, Sequence):
        return "+".join(str(v) for v in value) or "rest"
    return str(value)


def task_label(
    dataset: str,
    protocol: str = "anomaly",
    normal: Any = None,
    abnormal: Any = None,
    reference: Any = None,
    all_reference: bool = True,
) -> str:
    """A task's name, e.g. ``cifar10_jpg: deer vs horse`` or ``cifar10 one-vs-rest: cat``.

    The reference classes are named only when they are not "all the other classes".
    """
    if protocol == "classification":
        return f"{dataset} classification"
    if protocol == "one_vs_rest":
        return f"{dataset} one-vs-rest: {_classes(normal)}"
    named = dataset if protocol == "anomaly" else f"{dataset} {protocol.replace('_', '-')}"
    label = f"{named}: {_classes(normal)} vs {_classes(abnormal)}"
    if reference is not None and not all_reference:
        label += f" (ref {_classes(reference)})"
    return label


def task_of_config(config: Mapping[str, Any]) -> str:
    """The task of a resolved run config (before the run: classes as configured)."""
    ds = config.get("dataset") or {}
    protocol = str((config.get("protocol") or {}).get("name", "anomaly"))
    return task_label(
        str(ds.get("name", "?")),
        protocol,
        ds.get("normal"),
        ds.get("abnormal"),
        ds.get("reference"),
        all_reference=ds.get("reference") is None,
    )
