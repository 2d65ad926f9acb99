"""The state_dicts a run keeps: the best epoch's (a device copy made at each new best, as
early stopping's restore does) and the last trained epoch's (taken before any restore), each
as torch.save's file so that ``model.load_state_dict(torch.load(f, weights_only=True))``
brings it back."""

from __future__ import annotations

import base64
import hashlib
import io

import torch
from torch import nn

from trainer.events import Checkpoint, CheckpointName
from trainer.spec import CheckpointSpec


class Checkpoints:
    def __init__(self, spec: CheckpointSpec) -> None:
        self.keep = set(spec.keep)
        self.best: dict[str, torch.Tensor] | None = None
        self.best_epoch = 0
        self.best_val_loss = float("nan")
        self.last: Checkpoint | None = None

    def after_epoch(self, epoch: int, val_loss: float, is_best: bool, model: nn.Module) -> None:
        if is_best and "best" in self.keep:
            self.best = {k: v.detach().clone() for k, v in model.state_dict().items()}
            self.best_epoch, self.best_val_loss = epoch, val_loss

    def training_ended(self, epoch: int, model: nn.Module) -> None:
        """The last epoch's weights, before a stopping rule restores the best ones."""
        if "last" in self.keep and epoch:
            why = f"the last epoch trained ({epoch})"
            self.last = _checkpoint("last", epoch, why, model.state_dict())

    def kept(self, onset: tuple[int, dict[str, torch.Tensor]] | None = None) -> list[Checkpoint]:
        """best, last and (when the diagnosis found it and its weights were kept) onset."""
        out = [self.last] if self.last else []
        if onset is not None and "onset" in self.keep:
            why = f"the onset of overfitting the API's diagnosis found, after epoch {onset[0]}"
            out.append(_checkpoint("onset", onset[0], why, onset[1]))
        if self.best is not None:
            why = f"the lowest val_loss, {self.best_val_loss:.6g} at epoch {self.best_epoch}"
            out.insert(0, _checkpoint("best", self.best_epoch, why, self.best))
        return out


def _checkpoint(
    name: CheckpointName, epoch: int, why: str, state: dict[str, torch.Tensor]
) -> Checkpoint:
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in state.items()}, buffer)
    data = buffer.getvalue()
    return Checkpoint(
        name=name,
        epoch=epoch,
        why=why,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        data=base64.b64encode(data).decode("ascii"),
    )
