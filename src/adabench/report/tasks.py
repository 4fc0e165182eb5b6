"""Task identity and loss variants: what the report may compare and never merges.

A **task** is dataset + protocol + normal / abnormal (+ reference) classes; a report **row** is
one task × one loss configuration. Runs whose configs differ other than by seed (and keys that
cannot change a result) are never merged under one name: each gets the loss name followed by
what differs, e.g. ``arcface (loss.scale=16.0)``. Pairing is by seed within a task.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from adabench.record import RESULT_NEUTRAL_KEYS

NOT_A_VARIANT = (*RESULT_NEUTRAL_KEYS, "seed", "run_name", "dataset.root", "dataset.download")


def task_label(record: Mapping[str, Any], dataset: str) -> str:
    """The task of a finished run: ``dataset`` (the report's dataset label) + its classes."""
    data = record.get("data") or {}
    protocol = record.get("protocol") or "anomaly"
    normal = "+".join(map(str, data.get("normal") or []))
    if protocol == "classification" or not normal:  # no classes recorded: the dataset alone
        return dataset
    if protocol == "one_vs_rest":
        return f"{dataset}: {normal}"
    abnormal = "+".join(map(str, data.get("abnormal") or []))
    label = f"{dataset}: {normal} vs {abnormal}"
    config_ref = ((record.get("config") or {}).get("dataset") or {}).get("reference")
    if data.get("reference_pool"):  # reference classes from another dataset: named by it
        return f"{label} (ref {data['reference_pool']})"
    if config_ref is not None:  # only when chosen: "all the other classes" is the default
        label += f" (ref {'+'.join(map(str, data.get('reference') or []))})"
    return label


def flatten(node: Any, prefix: str = "") -> dict[str, str]:
    """A nested config as ``{"a.b": "value"}`` (values as text, lists included)."""
    if isinstance(node, Mapping):
        out: dict[str, str] = {}
        for k, v in node.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out
    return {prefix.rstrip("."): str(node)}


def _varies(key: str) -> bool:
    return not any(key == k or key.startswith(k + ".") for k in NOT_A_VARIANT)


def label_variants(rows: list[dict[str, Any]], configs: Sequence[Mapping[str, Any]]) -> list[str]:
    """Rename rows of one task and loss whose configs differ by more than the seed.

    Args:
        rows: Report rows (changed in place: ``loss`` gains the differing keys).
        configs: Each row's resolved run config, in the same order.

    Returns:
        One note per renamed group, for the report.
    """
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        if r.get("loss") is not None and r["status"] == "completed":
            groups[(r["task"], str(r["loss"]))].append(i)
    notes = []
    for (task, loss), idx in sorted(groups.items()):
        flat = [{k: v for k, v in flatten(configs[i]).items() if _varies(k)} for i in idx]
        keys = sorted({k for f in flat for k in f})
        differing = [k for k in keys if len({f.get(k) for f in flat}) > 1]
        if not differing:
            continue
        names: dict[str, str] = {}
        for i, f in zip(idx, flat, strict=True):
            full = ", ".join(f"{k}={f.get(k)}" for k in differing)
            rows[i]["variant"] = full
            rows[i]["loss"] = variant_name(str(loss), full)
            names[rows[i]["loss"]] = full
        shown = "; ".join(
            name if name.endswith(f"({full})") else f"{name} = {full}"
            for name, full in sorted(names.items())
        )
        notes.append(
            f"{task}: runs named {loss} differ in {', '.join(differing)}, so they are reported "
            f"as {len(names)} rows: {shown}."
        )
    return notes


SHORT_AFTER = 48  # longer row names (a study's tuned floats) get a short name; see results.csv


def variant_name(loss: str, full: str) -> str:
    """``loss (key=value, …)``, or ``loss @a1b2`` when that would not fit a table's column.

    A study's trials differ in every tuned float: their full names would squeeze the metric
    columns of a terminal to nothing. The short name is a stable hash of the values; the full
    parameters are in results.csv's ``variant`` column and the report's notes.
    """
    name = f"{loss} ({full})"
    if len(name) <= SHORT_AFTER:
        return name
    return f"{loss} @{hashlib.sha256(full.encode()).hexdigest()[:8]}"
