"""Collect the runs of one or more sweeps: one flat row per ``metrics.json``."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from adabench.files import RESULT_FILE, SUPERSEDED_DIR, display_path, load_result
from adabench.metrics import METRICS
from adabench.record import running_status
from adabench.report.tasks import label_variants, task_label

__all__ = ["METRIC_KEYS", "TIME_KEYS", "collect_runs", "dataset_label", "display_path"]

METRIC_KEYS = tuple(METRICS)
TIME_KEYS = ("setup_s", "train_s", "embed_s", "score_s", "total_s")


def dataset_label(record: dict) -> str:
    """The dataset a run belongs to.

    ``folder`` runs are told apart by their root; protocols other than ``anomaly`` are named.
    """
    name = str(record.get("dataset") or "?")
    if name == "folder":
        root = ((record.get("config") or {}).get("dataset") or {}).get("root") or ""
        name = f"folder:{Path(str(root)).name}"
    protocol = record.get("protocol") or "anomaly"
    return name if protocol == "anomaly" else f"{name} ({protocol.replace('_', '-')})"


def collect_runs(
    dirs: Iterable[str | Path], notes: list[str] | None = None
) -> list[dict[str, Any]]:
    """One flat row per ``metrics.json`` below ``dirs``; unreadable files become failed rows.

    Each row carries its ``task`` (:mod:`.tasks`); runs of one task and loss whose configs
    differ by more than the seed get the differing keys in their ``loss`` name, and a sentence
    saying so is appended to ``notes``.
    """
    rows, configs = [], []
    for d in dirs:
        d = Path(d)
        if not d.exists():
            raise FileNotFoundError(f"Sweep folder {d} does not exist.")
        for path in sorted(d.rglob(RESULT_FILE)):
            if SUPERSEDED_DIR in path.relative_to(d).parts[:-1]:
                continue  # an older config's result, set aside when its folder was reused
            try:
                rec = load_result(path)
            except (OSError, ValueError) as err:
                rec = {"status": "failed", "error": {"message": f"unreadable {RESULT_FILE}: {err}"}}
            status = rec.get("status", "failed")
            if status == "running":  # still at work, or killed outright?
                status = running_status(rec)
            row: dict[str, Any] = {
                "run_dir": display_path(path.parent),
                "status": status,
                "loss": rec.get("loss"),
                "dataset": dataset_label(rec),
                "backbone": rec.get("backbone"),
                "seed": rec.get("seed"),
                "baseline": rec.get("baseline") or "",
                "protocol": rec.get("protocol") or "anomaly",
                "normal": ",".join(map(str, (rec.get("data") or {}).get("normal") or [])),
                "config_hash": rec.get("config_hash"),
                "error": (rec.get("error") or {}).get("message", ""),
            }
            metrics = rec.get("metrics") or {}
            times = rec.get("times") or {}
            row["task"] = task_label(rec, row["dataset"])
            row.update({k: metrics.get(k) for k in METRIC_KEYS})
            row.update({k: times.get(k) for k in TIME_KEYS})
            rows.append(row)
            configs.append(rec.get("config") or {})
    said = label_variants(rows, configs)
    if notes is not None:
        notes += said
    return rows
