"""The split a run used, as a record (``split.json``): which images were in each part."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from adabench.data.splits import Split


def split_record(
    split: Split,
    classes: Sequence[str],
    pool_ids: Mapping[str, Sequence[str] | None],
    protocol: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Which images are in each part: pool rows, and ids (file names) where the pool has them.

    Written to the run folder as ``split.json``, so a run can be audited afterwards.

    Args:
        split: The split.
        classes: The pool's class names.
        pool_ids: Per pool (``train``, ``test``) each row's id, or ``None`` (ids are then
            ``<pool>:<row>``).
        protocol: What the protocol records of itself (name, validation design, few-shot).
    """
    parts = {
        "reference_train": ("train", split.reference_train),
        "normal_train": ("train", split.normal_train),
        "test_normal": ("test", split.test_normal),
        "test_abnormal": ("test", split.test_abnormal),
        "test_reference": ("test", split.test_reference),
    }
    val = split.validation
    if val is not None:  # every validation part comes from the training pool
        parts["val_normal"] = ("train", val.normal)
        parts["val_abnormal"] = ("train", val.abnormal)
        parts["val_labelled"] = ("train", val.labelled)
    out: dict[str, Any] = {"classes": list(classes), "parts": {}}
    if protocol is not None:
        out["protocol"] = dict(protocol)
    if val is not None:
        out["validation"] = {
            "design": val.design,
            "few_shot": val.few_shot,
            "synthetic": val.synthetic,  # val_abnormal rows are altered copies when set
            "held_out_classes": [classes[i] for i in val.held_out_classes],
        }
    for part, (pool, rows) in parts.items():
        ids = pool_ids.get(pool)
        out["parts"][part] = {
            "pool": pool,
            "rows": [int(r) for r in rows],
            "ids": [ids[int(r)] for r in rows] if ids else [f"{pool}:{int(r)}" for r in rows],
        }
    return out
