"""A training progress bar that fits one terminal line: epoch, batches, loss and accuracy."""

from __future__ import annotations

import sys
from typing import Any

from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.callbacks.progress.tqdm_progress import Tqdm

from adabench.console import refresh_interval

SHOWN = {"train/loss_step": "loss", "train/acc": "acc"}


class CompactProgressBar(TQDMProgressBar):
    """Lightning's tqdm bar with only the loss and the accuracy after it.

    No version number and no per-epoch duplicates, so it does not wrap onto several lines; on
    stderr, so stdout holds only adabench's result lines.
    """

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
            mininterval=refresh_interval(sys.stderr),
            bar_format=self.BAR_FORMAT,
        )

    def get_metrics(self, trainer: Any, pl_module: Any) -> dict[str, Any]:
        """The two metrics shown, under short names."""
        metrics = super().get_metrics(trainer, pl_module)
        return {short: metrics[key] for key, short in SHOWN.items() if key in metrics}
