"""Interrupts a run records: SIGTERM (a scheduler's time limit, ``kill``) raised as an exception."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from typing import Any


class RunInterrupted(KeyboardInterrupt):
    """The run received SIGTERM (a scheduler's time limit, ``kill``) and stopped.

    Like Ctrl-C it is not an ``Exception``: the run records ``status: interrupted`` and the whole
    sweep stops (a multirun goes on after a job's *error*, not after the process is told to
    end).
    """


@contextlib.contextmanager
def sigterm_raises(received: list[RunInterrupted]) -> Iterator[None]:
    """Turn SIGTERM into :class:`RunInterrupted` so the failure is recorded, not lost.

    The exception is also appended to ``received``: Lightning turns interrupts into
    ``SystemExit``, and the record must still say what happened.
    """

    def handler(signum: int, frame: Any) -> None:
        received.append(RunInterrupted(f"received signal {signal.Signals(signum).name}"))
        raise received[-1]

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
