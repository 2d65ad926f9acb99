"""Weights kept on the device for what a run sends at its end: the best epoch's (one copy,
refreshed at each new best, for its snapshot and its checkpoint), and the last few epochs'
(the API's diagnosis names the onset of overfitting some epochs after it happened, its
patience, so the onset epoch's weights must still be at hand when the news comes). At most
MAX_EPOCHS epochs and MAX_BYTES of recent copies; an older onset is not kept (and nothing
says it was)."""

from __future__ import annotations

import torch
from torch import nn

MAX_EPOCHS = 8
MAX_BYTES = 64 << 20

State = dict[str, torch.Tensor]


class BestState:
    """The lowest val_loss's epoch, that loss, and a copy of its state_dict."""

    def __init__(self) -> None:
        self.epoch = 0
        self.val_loss = float("nan")
        self.state: State | None = None

    def update(self, epoch: int, val_loss: float, model: nn.Module) -> None:
        state = model.state_dict()
        if self.state is None:
            self.state = {k: v.detach().clone() for k, v in state.items()}
        else:
            for key, value in state.items():
                self.state[key].copy_(value.detach())
        self.epoch, self.val_loss = epoch, val_loss

    def kept(self) -> tuple[int, State] | None:
        return (self.epoch, self.state) if self.state is not None else None


class RecentStates:
    def __init__(self, model: nn.Module) -> None:
        size = sum(t.numel() * t.element_size() for t in model.state_dict().values())
        self.capacity = max(1, min(MAX_EPOCHS, MAX_BYTES // max(1, size)))
        self.slots: list[tuple[int, State]] = []
        self.next = 0
        self.onset: tuple[int, State] | None = None  # the onset epoch's weights, once known

    def after_epoch(self, epoch: int, model: nn.Module, onset: int | None) -> None:
        """Keep this epoch's weights; and the onset epoch's, the first time it is known,
        if they are still here."""
        self.push(epoch, model)
        if self.onset is None and onset is not None:
            state = self.get(onset)
            self.onset = (onset, state) if state is not None else None

    def push(self, epoch: int, model: nn.Module) -> None:
        """Keep this epoch's weights, in place of the oldest once the ring is full."""
        state = model.state_dict()
        if len(self.slots) < self.capacity:
            self.slots.append((epoch, {k: v.detach().clone() for k, v in state.items()}))
            return
        _, buffers = self.slots[self.next]
        for key, value in state.items():
            buffers[key].copy_(value.detach())
        self.slots[self.next] = (epoch, buffers)
        self.next = (self.next + 1) % self.capacity

    def get(self, epoch: int) -> State | None:
        """A copy of that epoch's weights, if they are still kept."""
        for kept, state in self.slots:
            if kept == epoch:
                return {k: v.clone() for k, v in state.items()}
        return None
