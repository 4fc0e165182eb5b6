"""``ema_decay``: the evaluated weights are the exponential moving average of the trained ones."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from adabench.build import build_datamodule, build_module, training_callbacks
from adabench.errors import ConfigError

from .conftest import compose_config


class _Record(L.Callback):
    """Keeps a copy of the neck's weight after every step and what a later callback sees at the end
    (where the evaluation callback scores the model)."""

    def __init__(self) -> None:
        self.steps: list[torch.Tensor] = []
        self.at_train_end: torch.Tensor | None = None

    def on_train_end(self, trainer, pl_module) -> None:  # noqa: ANN001
        self.at_train_end = pl_module.embedder.neck[0].weight.detach().clone()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        self.steps.append(pl_module.embedder.neck[0].weight.detach().clone())


def _fit(cfg) -> tuple[torch.nn.Module, _Record]:  # noqa: ANN001
    L.seed_everything(0, verbose=False)
    dm = build_datamodule(cfg)
    dm.setup("fit")
    module = build_module(cfg, dm)
    record = _Record()
    trainer = L.Trainer(
        max_epochs=2,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[*training_callbacks(cfg), record],
    )
    trainer.fit(module, datamodule=dm)
    return module, record


def test_ema_weights_follow_the_definition():
    decay = 0.7
    module, record = _fit(compose_config(f"ema_decay={decay}"))
    assert len(record.steps) >= 4
    ema = record.steps[0]  # AveragedModel's first update copies the weights
    for w in record.steps[1:]:
        ema = decay * ema + (1 - decay) * w
    final = module.embedder.neck[0].weight.detach()
    torch.testing.assert_close(final, ema)
    torch.testing.assert_close(record.at_train_end, ema)  # the evaluation sees the average
    assert not torch.allclose(final, record.steps[-1])  # evaluated weights are not the last step's


def test_no_ema_by_default_keeps_the_last_weights():
    cfg = compose_config()
    assert cfg.ema_decay is None and training_callbacks(cfg) == []
    module, record = _fit(cfg)
    torch.testing.assert_close(module.embedder.neck[0].weight.detach(), record.steps[-1])


@pytest.mark.parametrize("decay", [0.0, 1.0, 1.5, -0.1])
def test_bad_ema_decay_names_the_value(decay):
    message = rf"ema_decay must be in \(0, 1\) or null \(off\), got {decay}"
    with pytest.raises(ConfigError, match=message):
        training_callbacks(compose_config(f"ema_decay={decay}"))
