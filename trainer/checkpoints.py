"""The state_dicts a run keeps: the best epoch's and the onset's (trainer.recent keeps their
device copies) and the last trained epoch's (taken before any restore), each as torch.save's
file so that ``model.load_state_dict(torch.load(f, weights_only=True))`` brings it back."""

from __future__ import annotations

import base64
import hashlib
import io

import torch
from torch import nn

from trainer.events import Checkpoint, CheckpointName
from trainer.recent import BestState, State
from trainer.spec import CheckpointSpec


class Checkpoints:
    def __init__(self, spec: CheckpointSpec) -> None:
        self.keep = set(spec.keep)
        self.last: Checkpoint | None = None

    def training_ended(self, epoch: int, model: nn.Module) -> None:
        """The last epoch's weights, before a stopping rule restores the best ones."""
        if "last" in self.keep and epoch:
            why = f"the last epoch trained ({epoch})"
            self.last = _checkpoint("last", epoch, why, model.state_dict())

    def kept(self, best: BestState | None, onset: tuple[int, State] | None) -> list[Checkpoint]:
        """best, last and (when the diagnosis found it and its weights were kept) onset."""
        out = [self.last] if self.last else []
        if best is not None and best.state is not None and "best" in self.keep:
            why = f"the lowest val_loss, {best.val_loss:.6g} at epoch {best.epoch}"
            out.insert(0, _checkpoint("best", best.epoch, why, best.state))
        if onset is not None and "onset" in self.keep:
            why = f"the onset of overfitting the API's diagnosis found, after epoch {onset[0]}"
            out.append(_checkpoint("onset", onset[0], why, onset[1]))
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
