"""The validation parts of a split: a frozen record of train-pool rows (no logic)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class ValidationParts:
    """The validation images of a split (train-pool rows).

    Attributes:
        design: The design's name.
        normal: Rows of held-out normal images (never in ``normal_train``).
        abnormal: Rows of the validation anomalies; for synthetic anomalies, the rows whose
            altered copies are the anomalies.
        synthetic: How ``abnormal`` rows are altered (``cutpaste``), or ``None``.
        few_shot: Whether the anomalies are images of the test's abnormal class(es).
        held_out_classes: Reference classes taken out of training to serve as anomalies.
        labelled: For classification: rows of held-out training images of every class.
    """

    design: str
    normal: np.ndarray
    abnormal: np.ndarray
    synthetic: str | None = None
    few_shot: bool = False
    held_out_classes: tuple[int, ...] = ()
    labelled: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))

    def sizes(self) -> dict[str, int]:
        """Number of images in each validation part."""
        return {
            "val_normal": len(self.normal),
            "val_abnormal": len(self.abnormal),
            "val_labelled": len(self.labelled),
        }
