"""One adabench run from a composed config: build → fit → evaluate → record.

The steps live in their own modules (docs/architecture.md): :mod:`adabench.build` (config →
objects), :mod:`adabench.fit` (training and evaluation → :class:`~adabench.fit.RunResult`),
:mod:`adabench.record` (metrics.json, provenance, resume). This module is the process around
them: threads, warnings, SIGTERM, the logger's lifetime and the one-line result.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from adabench.config import check_required, check_values
from adabench.console import error_text, report_failure, route_library_logs, say
from adabench.context import RunContext, is_rank_zero, threads_per_job
from adabench.files import (
    DETECTOR_DIR,
    EMBEDDINGS_FILE,
    RESULT_FILE,
    SCORES_FILE,
    SPLIT_FILE,
    WEIGHTS_FILE,
    atomic_write,
    display_path,
    free_space,
    save_arrays,
    write_json,
)
from adabench.interrupts import RunInterrupted, sigterm_raises
from adabench.loggers import finish_logger, log_scores, loggers_of, redact
from adabench.metrics import METRICS
from adabench.record import (
    FolderClaim,
    FolderTaken,
    RunRecord,
    config_hash,
    find_completed,
    git_commit,
    package_versions,
    remove_if_empty,
    set_aside,
)
from adabench.runtime import configure_process

_QUIET_WARNINGS = (  # noise from Lightning internals, not actionable by users
    ".*smaller than the logging interval.*",
    ".*LeafSpec.*",
    ".*does not have many workers.*",
    ".*module\\(s\\) in eval mode.*",  # the frozen trunk, on purpose
)


def sweep_value(record: dict) -> float:
    """The number a run returns to Hydra (a sweeper's objective): the **validation** metric.

    The protocol's primary metric (AUROC; test accuracy under ``protocol=classification``,
    k-NN accuracy for rows without a head) on the validation parts, never on the test
    images; NaN when the run has no validation
    parts (``protocol.validation=false``), so a tuner cannot optimise on the test set.
    """
    name = (record.get("protocol_info") or {}).get("primary_metric", "auroc")
    validation = record.get("validation") or {}
    for key in (name, "knn_accuracy"):  # a no-training row under classification has no head
        if validation.get(key) is not None:
            return float(validation[key])
    return float("nan")


def run_folder(cfg: DictConfig, ctx: RunContext) -> Path:
    """The run's folder: ``paths.output_dir``, else Hydra's output folder, else outputs/run."""
    return Path(cfg.get("paths", {}).get("output_dir") or ctx.output_dir or "outputs/run")


def run_job(cfg: DictConfig) -> float:
    """The task function of ``train.py`` and ``adabench-train``: :func:`train`, errors shown short.

    A failed single run exits 1 after one error line; a failed job of a sweep returns NaN so
    the sweep goes on (:class:`adabench.sweep_callback.SweepFailures` lists the failures and
    exits 1 at the end). Interrupts (Ctrl-C, SIGTERM) still stop everything.
    """
    ctx = RunContext.from_hydra()
    try:
        return train(cfg, ctx)
    except FolderTaken as err:
        if ctx.sweep_dir is None:
            say(f"[adabench] error: {err}; wait for it to end, or use another folder.", err=True)
            raise SystemExit(1) from None
        from adabench.sweep_callback import TAKEN

        TAKEN.add(run_folder(cfg, ctx))
        say(f"[adabench] {cfg.get('run_name')}: skipped, {err} (its result counts)")
        return float("nan")
    except Exception as err:
        in_sweep = ctx.sweep_dir is not None
        if report_failure(err, str(cfg.get("run_name")), run_folder(cfg, ctx), in_sweep):
            raise
        if in_sweep:
            return float("nan")
        raise SystemExit(1) from None


def train(cfg: DictConfig, ctx: RunContext | None = None) -> float:
    """Run one training + evaluation and write ``metrics.json``; returns the AUROC.

    Failures are recorded and re-raised: a Hydra multirun runs its other jobs and then exits
    non-zero. With ``resume: true`` a run is skipped when its folder, or any job folder of its
    sweep, already holds a completed result for the same config hash. Under DDP only rank 0
    writes files.
    """
    for pattern in _QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    ctx = ctx or RunContext.from_hydra()
    route_library_logs()
    check_required(cfg)
    run_dir = run_folder(cfg, ctx)
    run_dir.mkdir(parents=True, exist_ok=True)
    # one process at a time in a folder: a second sweep into it skips what this one runs
    claim = FolderClaim(run_dir) if is_rank_zero() else None
    try:
        return _train_claimed(cfg, ctx, run_dir)
    finally:
        if claim is not None:
            claim.release()


def _train_claimed(cfg: DictConfig, ctx: RunContext, run_dir: Path) -> float:
    resolved = OmegaConf.to_container(cfg, resolve=True)
    chash = config_hash(resolved)
    done = find_completed(run_dir, chash, ctx.sweep_dir) if cfg.get("resume", True) else None
    if done is not None and is_rank_zero():
        where, previous = done
        say(f"[adabench] {cfg.run_name}: already completed in {where}, skipped (resume)")
        remove_if_empty(run_dir, keep=where)
        return sweep_value(previous)
    if is_rank_zero() and (moved := set_aside(run_dir, chash)):
        say(f"[adabench] {cfg.run_name}: the folder's earlier attempt kept in {moved}")
    config = redact(resolved)
    record = RunRecord(
        run_dir,
        {
            "run_name": cfg.get("run_name"),
            "loss": str(cfg.loss.name),
            "dataset": str(cfg.dataset.name),
            "backbone": cfg.backbone.name,
            "seed": int(cfg.seed),
            "protocol": str(cfg.get("protocol", {}).get("name", "anomaly")),
            "baseline": None,
            "config_hash": chash,
            "versions": package_versions(),
            "process": configure_process(),
            "git_commit": git_commit(ctx.cwd),
            "config": config,
        },
        writer=is_rank_zero(),
    )
    times: dict[str, float] = {}
    logger: Any = None
    t_start = time.perf_counter()
    interrupts: list[RunInterrupted] = []
    try:
        with sigterm_raises(interrupts):
            logger, result = _run(cfg, ctx, run_dir, config, times)
        times.update(result.times)
        record.completed(result.metrics, result.facts)
        if result.writer:
            _save_outputs(cfg, run_dir, result)
    except BaseException as err:
        # an interrupt reaches here as SystemExit from Lightning's interrupt handling
        record.failed(interrupts[0] if interrupts else err)
        if record.writer and record.data["status"] == "interrupted":
            _say_interrupted(cfg, ctx, record)
        raise
    finally:
        times["total_s"] = time.perf_counter() - t_start
        try:
            record.close(times)
        except OSError as err:  # the disk is full: the result line above still holds the metrics
            say(f"[adabench] {cfg.run_name}: {OutputsNotWritten(record.path, err)}", err=True)
        if record.writer and logger is not None:
            _close_logger(logger, record.data)
    if record.writer:
        _print_result(record.data, run_dir)
    return sweep_value(record.data)


def _run(
    cfg: DictConfig,
    ctx: RunContext,
    run_dir: Path,
    config: dict,
    times: dict[str, float],
) -> tuple[Any, Any]:
    """Build, then fit and evaluate (or evaluate a baseline); returns (logger, RunResult)."""
    check_values(cfg)  # recorded as the run's failure; nothing before it imports torch or Lightning
    # torch, Lightning and timm load here, not at import: a Hydra error or --help stays fast
    import lightning as L
    import torch

    route_library_logs()  # Lightning has just been imported: its console handlers go

    from adabench.build import build_logger, build_run
    from adabench.fit import evaluate_baseline, fit_and_evaluate

    t0 = time.perf_counter()
    threads = cfg.get("threads")
    if threads is None and ctx.parallel_jobs > 1:  # parallel jobs must not oversubscribe cores
        threads = threads_per_job(ctx.parallel_jobs)
    if threads:
        torch.set_num_threads(int(threads))
        times["threads"] = int(threads)
    L.seed_everything(int(cfg.seed), workers=True, verbose=False)
    built = build_run(cfg)
    logger = build_logger(cfg, run_dir, ctx.group, config)
    times["setup_s"] = time.perf_counter() - t0
    if built.baseline is not None:
        result = evaluate_baseline(built)
        if result.writer:
            for one in loggers_of(logger):
                one.log_metrics({f"test/{k}": v for k, v in result.metrics.items()}, step=0)
            log_scores(logger, result.scores)
        _save_detector(cfg, built, result, run_dir)
        return logger, result
    result = fit_and_evaluate(cfg, built, logger, run_dir, ctx.on_validation)
    if result.writer:
        log_scores(logger, result.scores)
    if result.writer and cfg.get("save_weights"):
        atomic_write(run_dir / WEIGHTS_FILE, lambda tmp: torch.save(built.module.state_dict(), tmp))
    _save_detector(cfg, built, result, run_dir)
    return logger, result


def _save_detector(cfg: DictConfig, built: Any, result: Any, run_dir: Path) -> None:
    """``save_detector=true``: export the run's detector; a failure is a warning, not the run's."""
    if not (result.writer and cfg.get("save_detector")):
        return
    from adabench.detector import export_built

    record = {"run_name": cfg.get("run_name"), "validation": result.facts.get("validation")}
    try:
        export_built(built, cfg, run_dir / DETECTOR_DIR, record)
    except Exception as err:  # noqa: BLE001 - the run's own result stands
        say(f"[adabench] warning: save_detector failed ({error_text(err)})", err=True)


class OutputsNotWritten(OSError):
    """A run's result could not be written (full disk, read-only folder): where, and why."""

    def __init__(self, path: Path, cause: BaseException) -> None:
        super().__init__(
            f"writing {display_path(path)} failed ({type(cause).__name__}: {cause}); "
            f"{free_space(path)}. Free some space (or set hydra.sweep.dir / hydra.run.dir "
            "elsewhere) and run the same command again."
        )


def _save_outputs(cfg: DictConfig, run_dir: Path, result: Any) -> None:
    """Write scores, split (and embeddings); a full disk still shows the computed metrics."""
    outputs = [(run_dir / SCORES_FILE, lambda p: save_arrays(p, result.scores))]
    outputs.append((run_dir / SPLIT_FILE, lambda p: write_json(p, result.split)))
    if cfg.get("save_embeddings"):
        outputs.append((run_dir / EMBEDDINGS_FILE, lambda p: save_arrays(p, result.embeddings)))
    for path, write in outputs:
        try:
            write(path)
        except (OSError, RuntimeError) as err:  # torch.save says RuntimeError on a full disk
            say(f"[adabench] {cfg.run_name}: computed {metrics_text(result.metrics)}", err=True)
            raise OutputsNotWritten(path, err) from err


def _say_interrupted(cfg: DictConfig, ctx: RunContext, record: RunRecord) -> None:
    from adabench.sweep_callback import interrupted_line

    reason = str(record.data["error"]["message"])
    say(interrupted_line(str(cfg.run_name), reason, record.path, ctx.sweep_dir), err=True)


def _close_logger(logger: Any, record: dict) -> None:
    summary = {f"test/{k}": v for k, v in (record.get("metrics") or {}).items()}
    summary["status"] = record["status"]
    try:
        finish_logger(logger, summary)
    except Exception as err:  # noqa: BLE001 - a logger failure must not hide the result
        say(f"[adabench] warning: closing the logger failed: {err}", err=True)


def metrics_text(metrics: dict[str, float]) -> str:
    """``auroc=0.9950 aupr=…``: a run's metrics as its result line shows them."""
    return " ".join(f"{k}={metrics[k]:.4f}" for k in METRICS if k in metrics)


def _print_result(record: dict, run_dir: Path) -> None:
    say(
        f"[adabench] {record['run_name']}: {metrics_text(record['metrics'])} "
        f"({record['times']['total_s']:.1f}s) -> {display_path(run_dir / RESULT_FILE)}"
    )
