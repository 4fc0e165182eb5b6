"""A training progress bar that fits one terminal line: epoch, batches, loss and accuracy."""

from __future__ import annotations

import sys
import time
from typing import Any

from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.callbacks.progress.tqdm_progress import Tqdm

from adabench.console import refresh_interval

SHOWN = {"train/loss_step": "loss", "train/acc": "acc"}


class CompactProgressBar(TQDMProgressBar):
    """Lightning's tqdm bar with only the loss and the accuracy after it.

    No version number and no per-epoch duplicates, so it does not wrap onto several lines; on
    stderr, so stdout holds only adabench's result lines. Into a log file (stderr not a
    terminal) it is redrawn at most every ``refresh_interval()`` seconds and at each epoch's
    end: Lightning redraws it explicitly, which tqdm's own ``mininterval`` does not limit.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.min_seconds = refresh_interval(sys.stderr)
        self._last_drawn = float("-inf")

    def init_train_tqdm(self) -> Tqdm:
        """The training bar, on stderr."""
        return Tqdm(
            desc=self.train_description,
            position=(2 * self.process_position),
            disable=self.is_disabled,
            leave=True,
            dynamic_ncols=True,
            file=sys.stderr,
            smoothing=0,
            bar_format=self.BAR_FORMAT,
        )

    def _should_update(self, current: int, total: int) -> bool:
        if not super()._should_update(current, total):
            return False
        now = time.monotonic()
        if current == total or now - self._last_drawn >= self.min_seconds:
            self._last_drawn = now
            return True
        return False

    def get_metrics(self, trainer: Any, pl_module: Any) -> dict[str, Any]:
        """The two metrics shown, under short names."""
        metrics = super().get_metrics(trainer, pl_module)
        return {short: metrics[key] for key, short in SHOWN.items() if key in metrics}
