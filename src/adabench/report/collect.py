"""Collect the runs of one or more sweeps: one flat row per ``metrics.json``."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from adabench.files import RESULT_FILE, SUPERSEDED_DIR, display_path, load_result
from adabench.metrics import METRICS
from adabench.record import running_status
from adabench.report.tasks import label_variants, task_label

__all__ = [
    "METRIC_KEYS",
    "TIME_KEYS",
    "VALIDATION_KEYS",
    "collect_runs",
    "dataset_label",
    "display_path",
]

METRIC_KEYS = tuple(METRICS)
TIME_KEYS = ("setup_s", "train_s", "embed_s", "score_s", "total_s")
VALIDATION_KEYS = tuple(f"val_{k}" for k in METRIC_KEYS)


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


def run_records(dirs: Iterable[str | Path]) -> Iterator[tuple[Path, dict[str, Any]]]:
    """(``metrics.json`` path, record) of every run below ``dirs``, each run once.

    Results that resume set aside in ``superseded/`` are not runs of the sweep; overlapping
    folders (a sweep and one of its jobs) give a run once; an unreadable file gives a failed
    record saying why.
    """
    seen: set[Path] = set()
    for d in map(Path, dirs):
        if not d.exists():
            raise FileNotFoundError(f"Sweep folder {d} does not exist.")
        for path in sorted(d.rglob(RESULT_FILE)):
            if SUPERSEDED_DIR in path.relative_to(d).parts[:-1]:
                continue  # an older config's result, set aside when its folder was reused
            if path.resolve() in seen:
                continue
            seen.add(path.resolve())
            try:
                yield path, load_result(path)
            except (OSError, ValueError) as err:
                yield (
                    path,
                    {"status": "failed", "error": {"message": f"unreadable {RESULT_FILE}: {err}"}},
                )


def collect_runs(
    dirs: Iterable[str | Path], notes: list[str] | None = None
) -> list[dict[str, Any]]:
    """One flat row per ``metrics.json`` below ``dirs``; unreadable files become failed rows.

    Each row carries its ``task`` (:mod:`.tasks`); runs of one task and loss whose configs
    differ by more than the seed get the differing keys in their ``loss`` name, and a sentence
    saying so is appended to ``notes``.
    """
    rows: list[dict[str, Any]] = []
    records: list[dict] = []
    configs: list[dict] = []
    for path, rec in run_records(dirs):
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
        row.update({k: metrics.get(k) for k in METRIC_KEYS})
        validation = rec.get("validation") or {}  # what a tuner chose by: shown beside test
        row.update({f"val_{k}": validation.get(k) for k in METRIC_KEYS})
        row.update({k: times.get(k) for k in TIME_KEYS})
        rows.append(row)
        records.append(rec)
        configs.append(rec.get("config") or {})
    said = tell_datasets_apart(rows, records)
    for row, rec in zip(rows, records, strict=True):
        row["task"] = task_label(rec, row["dataset"])
    said += label_variants(rows, configs)
    said += refuse_repeated_seeds(rows)
    if notes is not None:
        notes += said
    return rows


def data_identity(record: dict, by_root: dict[str, str] | None = None) -> str | None:
    """What a run's images were: its fingerprint; for older runs of a folder, its root.

    ``by_root`` maps roots to the fingerprints newer runs recorded there, so an older run of
    the same folder is the same data.
    """
    fingerprint = (record.get("data") or {}).get("fingerprint") or {}
    if fingerprint.get("hash"):
        return str(fingerprint["hash"])
    root = _root_of(record)
    if record.get("dataset") == "folder" and root:
        return (by_root or {}).get(root, root)
    return None


def _root_of(record: dict) -> str:
    fingerprint = (record.get("data") or {}).get("fingerprint") or {}
    config_root = ((record.get("config") or {}).get("dataset") or {}).get("root")
    return str(fingerprint.get("root") or config_root or "")


def tell_datasets_apart(rows: list[dict[str, Any]], records: list[dict]) -> list[str]:
    """Rename datasets that share a label but not their images (``…/A/images``, ``…/B/images``).

    Each gets as much of its root's path as tells it apart (or its fingerprint), in place.
    Returns one note per renamed label.
    """
    by_root = {
        _root_of(rec): str(rec["data"]["fingerprint"]["hash"])
        for rec in records
        if ((rec.get("data") or {}).get("fingerprint") or {}).get("hash")
    }
    idents = [data_identity(rec, by_root) for rec in records]
    by_label: dict[str, dict[str, str]] = defaultdict(dict)
    for row, rec, ident in zip(rows, records, idents, strict=True):
        if ident is not None:
            by_label[row["dataset"]].setdefault(ident, _root_of(rec))
    notes = []
    for label, roots in sorted(by_label.items()):
        if len(roots) < 2:
            continue
        names = _distinct_names(roots)
        for row, ident in zip(rows, idents, strict=True):
            if row["dataset"] == label and ident in names:
                row["dataset"] = f"{label.split(' (')[0]}[{names[ident]}]" + (
                    f" ({label.split(' (', 1)[1]}" if " (" in label else ""
                )
        notes.append(
            f"{len(roots)} different datasets are labelled {label}; they are reported apart as "
            + ", ".join(sorted(f"[{n}]" for n in names.values()))
            + "."
        )
    return notes


def _distinct_names(roots: dict[str, str]) -> dict[str, str]:
    """For each identity, the shortest tail of its root's path that no other root shares."""
    parts = {ident: Path(root).parts if root else () for ident, root in roots.items()}
    for depth in range(1, 1 + max(len(p) for p in parts.values())):
        tails = {ident: "/".join(p[-depth:]) for ident, p in parts.items()}
        if len(set(tails.values())) == len(tails) and all(tails.values()):
            return tails
    return {ident: ident[:8] for ident in roots}  # same root, other files: the fingerprint


def refuse_repeated_seeds(rows: list[dict[str, Any]]) -> list[str]:
    """Runs of one task, row and seed found more than once are used in no table, and said.

    The report pairs runs by seed: two seed-0 runs in one row would be averaged as if they
    were two seeds. Their rows get ``status: repeated seed`` (listed with the failures).
    """
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if row["status"] == "completed":
            groups[(row["task"], str(row["loss"]), row["seed"])].append(row)
    notes = []
    for (task, loss, seed), same in sorted(groups.items(), key=str):
        if len(same) < 2:
            continue
        folders = ", ".join(r["run_dir"] for r in same)
        why = (
            f"seed {seed} of {task} / {loss} was found {len(same)} times ({folders}); runs are "
            "paired by seed, so none of them is used. Report one of the folders, or delete the "
            "copies."
        )
        for row in same:
            row.update(status="repeated seed", error=why)
        notes.append(why)
    return notes
