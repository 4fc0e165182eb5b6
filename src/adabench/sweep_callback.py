"""Hydra callback (``conf/hydra/default.yaml``): list the failed jobs when a sweep ends, exit 1."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from adabench.files import RESULT_FILE, load_result


class SweepFailures(Callback):
    """Hydra callback: at the end of a sweep, list the jobs that failed in it and exit 1."""

    def __init__(self) -> None:
        self.started = 0.0

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Remember when the sweep started (results older than that are not this sweep's)."""
        self.started = time.time()

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """Print every job of this sweep whose metrics.json says failed, then exit 1."""
        failed = failed_runs(Path(config.hydra.sweep.dir), self.started)
        if not failed:
            return
        lines = [f"[adabench] {len(failed)} job(s) of the sweep failed:"]
        lines += [f"  {name}: {reason}  ({path})" for name, reason, path in failed]
        print("\n".join(lines), file=sys.stderr, flush=True)  # Hydra's own log shows no more
        raise SystemExit(1)


def failed_runs(sweep_dir: Path, since: float = 0.0) -> list[tuple[str, str, Path]]:
    """(run name, reason, metrics.json) of each failed run below ``sweep_dir``.

    Only runs whose metrics.json was written after ``since`` (a Unix time) count.
    """
    out = []
    for path in sorted(sweep_dir.glob(f"*/{RESULT_FILE}")):
        if path.stat().st_mtime < since:
            continue
        try:
            rec = load_result(path)
        except (OSError, ValueError):
            continue
        if rec.get("status") == "failed":
            err = rec.get("error") or {}
            reason = f"{err.get('type', '?')}: {str(err.get('message', '')).splitlines()[0]}"
            out.append((str(rec.get("run_name")), reason, path))
    return out
