"""Batches gathered in one indexing operation (no per-sample collate)."""

from __future__ import annotations

import torch
from torch import Tensor


class BatchTensors(torch.utils.data.Dataset):
    """Indexing by a whole batch of indices at once: one gather per batch, no collate."""

    def __init__(self, *tensors: Tensor) -> None:
        self.tensors = tensors

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitem__(self, idx: list[int]) -> tuple[Tensor, ...]:
        index = torch.as_tensor(idx)
        return tuple(t[index] for t in self.tensors)
