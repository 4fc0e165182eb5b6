"""LightningModule: embedder + loss head, trained to classify reference + normal classes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from torch import Tensor
from torchmetrics.classification import MulticlassAccuracy

from adabench.embedder import Embedder
from adabench.errors import DivergedError
from adabench.losses import ClassificationHead


class AnomalyModule(L.LightningModule):
    """Train an :class:`Embedder` with a :class:`ClassificationHead`.

    Args:
        embedder: Images → embeddings.
        head: Embeddings → logits and loss; owns the class weights (trained with the rest).
        optimizer: ``params → torch.optim.Optimizer`` (Hydra ``_partial_`` instantiation).
        scheduler: Optional ``optimizer → LR scheduler``, stepped per epoch.
        backbone_lr_scale: The backbone's learning rate is the optimizer's times this (e.g.
            0.1 to fine-tune pretrained layers gently while the neck and head learn fast).
    """

    def __init__(
        self,
        embedder: Embedder,
        head: ClassificationHead,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        backbone_lr_scale: float = 1.0,
    ) -> None:
        super().__init__()
        self.embedder = embedder
        self.head = head
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.backbone_lr_scale = float(backbone_lr_scale)
        self.inputs = "images"  # "trunk": batches hold the frozen trunk's outputs
        classes = max(2, head.num_classes)  # one class: self-supervised heads log no accuracy
        self.train_acc = MulticlassAccuracy(num_classes=classes, average="micro")
        self.register_buffer("_nonfinite", torch.zeros((), dtype=torch.bool), persistent=False)

    def forward(self, inputs: Tensor) -> Tensor:
        """Embeddings of a batch of images (or of trunk outputs when ``inputs == "trunk"``)."""
        if self.inputs == "trunk":
            return self.embedder.embed_trunk_outputs(inputs)
        return self.embedder(inputs)

    def training_step(self, batch: tuple[Any, Tensor], batch_idx: int) -> Tensor:
        images, labels = batch
        if getattr(self.head, "views", 1) == 2:  # self-supervised: two views, no labels
            first, second = images
            loss = self.head.pair_loss(self(first), self(second))
            self._nonfinite |= ~torch.isfinite(loss.detach())
            self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True)
            return loss
        emb = self(images)
        loss = self.head(emb, labels)
        self._nonfinite |= ~torch.isfinite(loss.detach())  # checked once per epoch: no host sync
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True)
        with torch.no_grad():
            logits = self.head.logits(emb.detach())
        if logits is not None:  # pair / triplet losses have no classes to predict
            self.train_acc(logits.argmax(1), labels)
            self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, prog_bar=True)
        scale = getattr(self.head, "scale", None)
        if isinstance(scale, Tensor):
            self.log("train/scale", scale, on_step=False, on_epoch=True)
        return loss

    def on_train_epoch_end(self) -> None:
        if bool(self._nonfinite):
            raise DivergedError(
                f"Training diverged: the loss became NaN or inf in epoch {self.current_epoch}. "
                "Lower optimizer.lr, or the loss's scale/margin."
            )

    def configure_optimizers(self) -> Any:
        backbone = [p for p in self.embedder.backbone.parameters() if p.requires_grad]
        taken = {id(p) for p in backbone}
        rest = [p for p in self.parameters() if p.requires_grad and id(p) not in taken]
        groups = [{"params": rest}]
        if backbone:
            groups.insert(0, {"params": backbone, "name": "backbone"})
        optimizer = self.optimizer_factory(params=groups)
        for group in optimizer.param_groups:
            if group.get("name") == "backbone":
                group["lr"] *= self.backbone_lr_scale
        if self.scheduler_factory is None:
            return optimizer
        return {
            "optimizer": optimizer,
            "lr_scheduler": {
                "scheduler": self.scheduler_factory(optimizer=optimizer),
                "interval": "epoch",
            },
        }

    @torch.inference_mode()
    def embed(self, batches: Any) -> Tensor:
        """Embed an iterable of image batches in eval mode; returns float32 on the CPU."""
        was_training = self.training
        self.eval()
        try:
            out = [self(b.to(self.device, non_blocking=True)).float().cpu() for b in batches]
        finally:
            self.train(was_training)
        emb = torch.cat(out)
        if not torch.isfinite(emb).all():
            raise DivergedError("The embeddings hold NaN or inf values; training diverged.")
        return emb
