"""What a user sees: adabench's own lines on the console, everything else in the run's log.

- :func:`say` prints one adabench line to stdout and writes it to the run's ``train.log``.
- :func:`route_library_logs` sends Lightning's info lines (accelerator, tips) to the log file
  instead of the console; its warnings still reach the console through Hydra's handlers.
- :func:`report_failure` is how :func:`adabench.run.run_job` shows an error: a failed single
  run ends with one error line (its hint included) on stderr and exit code 1, the traceback in
  ``train.log`` (on the console too with ``ADABENCH_TRACEBACK=1``); a failed job of a sweep is
  printed as it fails and the sweep goes on.
- :class:`adabench.sweep_callback.SweepFailures` lists every failed job when a sweep ends.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from pathlib import Path
from typing import TextIO

log = logging.getLogger("adabench")
_trace = logging.getLogger("adabench.trace")
TRACEBACK_ENV = "ADABENCH_TRACEBACK"


def say(message: str, err: bool = False) -> None:
    """Print an adabench line (stdout, or stderr with ``err``) and write it to the run's log."""
    print(message, file=sys.stderr if err else sys.stdout, flush=True)
    log.info(message)


def route_library_logs() -> None:
    """Lightning's info lines go to the log file, not the console (idempotent).

    Lightning gives its loggers a console handler of their own when it is imported before
    logging is configured; they are removed here so its records reach the root handlers, which
    Hydra set up: the file at INFO, the console from WARNING.
    """
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if isinstance(handler, logging.StreamHandler) and not isinstance(
                handler, logging.FileHandler
            ):
                logger.removeHandler(handler)
        logger.propagate = True


def error_text(err: BaseException) -> str:
    """The error as the user reads it: the message (its hint included), with its type."""
    message = str(err).strip() or type(err).__name__
    return f"{type(err).__name__}: {message}"


_FIRST_WITH: dict[str, tuple[str, str]] = {}  # error text -> (folder, name) of its first job


def log_traceback(err: BaseException) -> None:
    """Write ``err``'s traceback to the run's log only."""
    _trace.info("".join(traceback.format_exception(err)))


def report_failure(err: Exception, run_name: str, run_dir: Path, in_sweep: bool) -> bool:
    """Show a failed run the short way; returns whether the caller should re-raise instead.

    The traceback always goes to the run's log. In a sweep: one ``FAILED`` line, and the sweep
    goes on; an error that an earlier job of the process printed already is referred to, not
    printed again. A single run: the error line and where its traceback is, unless
    ``ADABENCH_TRACEBACK`` (or Hydra's ``HYDRA_FULL_ERROR``) asks for the traceback itself.
    """
    log_traceback(err)
    if in_sweep:
        text = error_text(err)
        folder, first = _FIRST_WITH.setdefault(text, (str(run_dir), run_name))
        if folder == str(run_dir):
            say(f"[adabench] FAILED {run_name}: {text}", err=True)
        else:  # tuning trials share a name: the folder tells them apart
            where = f"{first} ({Path(folder).name})" if first == run_name else first
            say(f"[adabench] FAILED {run_name}: the same error as {where} (above)", err=True)
        return False
    if os.environ.get(TRACEBACK_ENV) or os.environ.get("HYDRA_FULL_ERROR"):
        return True
    say(f"[adabench] error: {error_text(err)}", err=True)
    say(
        f"[adabench] {run_name} failed; traceback in {run_dir / 'train.log'} "
        f"(or set {TRACEBACK_ENV}=1)",
        err=True,
    )
    return False


class QuietFileHandler(logging.FileHandler):
    """The run's ``train.log`` handler: a write that fails (a full disk) is said once, not per line.

    Python's logging prints a traceback for every record it cannot write: 177 lines on a disk
    with 16 KB free. This handler prints one line the first time and then drops the file.
    """

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        if getattr(self, "_failed", False):
            return
        self._failed = True
        err = sys.exc_info()[1]
        print(
            f"[adabench] warning: cannot write {self.baseFilename} ({err}); the rest of this "
            "run's log goes to the console only.",
            file=sys.stderr,
            flush=True,
        )

    def emit(self, record: logging.LogRecord) -> None:
        if not getattr(self, "_failed", False):
            super().emit(record)

    def flush(self) -> None:
        try:
            super().flush()
        except OSError:
            self.handleError(None)  # type: ignore[arg-type]

    def close(self) -> None:
        try:
            super().close()
        except OSError:  # what was buffered cannot be written either: said already
            self.stream = None


LOG_INTERVAL_S = 30.0  # a bar written to a file (nohup, SLURM, CI) updates at most this often


def refresh_interval(stream: TextIO | None = None) -> float:
    """Seconds between bar updates: 0.1 on a terminal, ``LOG_INTERVAL_S`` into a log file.

    tqdm rewrites its line with a carriage return; in a file every rewrite stays, so a
    10-epoch run would leave megabytes of bars in a sweep's log.
    """
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return 0.1 if isatty is not None and isatty() else LOG_INTERVAL_S
