"""Recompute every run's detection metrics from its ``scores.npz`` and repair ``metrics.json``.

Runs recorded before adabench computed its metrics on the raw scores (versions that passed
distances to torchmetrics, which read values outside [0, 1] as logits) can hold a wrong AUROC,
AUPR or FPR@95%TPR beside right scores. :func:`audit_rows` recomputes each completed run's
metrics from its saved scores, gives the report the recomputed values, and with ``fix=True``
rewrites the run's ``metrics.json`` atomically, keeping the old values under ``audit.previous``.
"""

from __future__ import annotations

import math
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from adabench.files import RESULT_FILE, SCORES_FILE, load_result, write_json
from adabench.metrics import detection_metrics

TOLERANCE = 1e-6  # older metrics.json files hold float32 values: closer than this is agreement


@dataclass(frozen=True)
class Correction:
    """One metric of one run whose ``metrics.json`` disagrees with its ``scores.npz``.

    Attributes:
        run_dir: The run's folder.
        metric: The metric's name.
        recorded: The value in ``metrics.json``.
        recomputed: The value computed from ``scores.npz``.
    """

    run_dir: str
    metric: str
    recorded: float
    recomputed: float


class UnreadableScores(ValueError):
    """A run's ``scores.npz`` exists but cannot be read as scores (named, with the reason)."""


def recompute(run_dir: str | Path) -> dict[str, float] | None:
    """Every detection metric of the scores saved in ``run_dir`` (``None``: none saved).

    Raises:
        UnreadableScores: the file is damaged or holds no numeric ``score`` / ``is_abnormal``.
    """
    path = Path(run_dir) / SCORES_FILE
    if not path.exists():
        return None
    try:
        with np.load(path) as data:
            if "score" not in data or "is_abnormal" not in data:
                return None
            score, label = data["score"], data["is_abnormal"]
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as err:
        why = str(err).splitlines()[0] if str(err) else type(err).__name__
        if "allow_pickle" in why:  # never advise loading pickles from a results folder
            why = "it holds Python objects, not numbers (adabench never writes such a file)"
        raise UnreadableScores(f"{path}: unreadable ({why})") from None
    return detection_metrics(score, label)


def audit_rows(
    rows: Sequence[dict[str, Any]],
    fix: bool = False,
    tolerance: float = TOLERANCE,
    notes: list[str] | None = None,
) -> tuple[list[dict[str, Any]], list[Correction]]:
    """The rows with every detection metric recomputed from the saved scores, and what changed.

    Args:
        rows: Report rows (``adabench.report.collect.collect_runs``).
        fix: Also rewrite each disagreeing run's ``metrics.json`` (atomically; the recorded
            values are kept under ``audit.previous``).
        tolerance: Largest absolute difference that counts as agreement (a recorded NaN never
            agrees).
        notes: Receives one line per run whose scores cannot be read (that run is left out
            of the tables, as ``unreadable scores``) and one for the runs with no scores at all
            (their recorded metrics are used, unchecked).

    Returns:
        New rows (the recomputed values in place of the recorded ones) and the corrections.
    """
    out, corrections, unchecked = [], [], []
    said = notes if notes is not None else []
    for row in rows:
        try:
            fresh = recompute(row["run_dir"]) if row["status"] == "completed" else None
        except UnreadableScores as err:
            said.append(f"{err}; the run is left out of the tables.")
            out.append({**row, "status": "unreadable scores", "error": str(err)})
            continue
        if not fresh:
            if row["status"] == "completed" and row.get("auroc") is not None:
                unchecked.append(row["run_dir"])
            out.append(dict(row))
            continue
        changed = [
            Correction(row["run_dir"], k, float(row[k]), v)
            for k, v in fresh.items()
            if row.get(k) is not None and not _agree(float(row[k]), v, tolerance)
        ]
        corrections += changed
        out.append({**row, **{k: v for k, v in fresh.items() if k in row}})
        if fix and changed:
            _rewrite(Path(row["run_dir"]), fresh, changed)
    if unchecked:
        said.append(
            f"{len(unchecked)} run(s) have no {SCORES_FILE}, so their metrics are used as "
            f"recorded, unchecked: {', '.join(unchecked[:10])}"
            + (f" and {len(unchecked) - 10} more" if len(unchecked) > 10 else "")
        )
    return out, corrections


def _agree(recorded: float, fresh: float, tolerance: float) -> bool:
    if math.isnan(recorded) or math.isnan(fresh):
        return math.isnan(recorded) and math.isnan(fresh)
    return abs(recorded - fresh) <= tolerance


def _rewrite(run_dir: Path, fresh: dict[str, float], changed: list[Correction]) -> None:
    record = load_result(run_dir / RESULT_FILE)
    previous = {c.metric: c.recorded for c in changed}
    record["metrics"] = {**(record.get("metrics") or {}), **fresh}
    record["audit"] = {
        "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "previous": {**(record.get("audit") or {}).get("previous", {}), **previous},
        "reason": f"recomputed from {SCORES_FILE} on the raw scores",
    }
    write_json(run_dir / RESULT_FILE, record)


def audit_lines(corrections: Sequence[Correction], fixed: bool) -> list[str]:
    """One line per corrected metric, for the console and summary.md."""
    if not corrections:
        return []
    runs = len({c.run_dir for c in corrections})
    head = (
        f"{runs} run(s) recorded metrics that their {SCORES_FILE} does not give; the tables use "
        + (
            "the recomputed values, now written to their metrics.json:"
            if fixed
            else "the recomputed values (adabench report --fix writes them to metrics.json):"
        )
    )
    return [head] + [
        f"{c.run_dir}: {c.metric} {c.recorded:.4f} -> {c.recomputed:.4f}" for c in corrections
    ]
