"""The last few epochs' weights, on the device: the API's diagnosis names the onset of
overfitting some epochs after it happened (its patience), so the onset epoch's weights must
still be at hand when the news comes. At most MAX_EPOCHS epochs and MAX_BYTES of copies;
an onset older than that is not kept (and nothing says it was)."""

from __future__ import annotations

import torch
from torch import nn

MAX_EPOCHS = 8
MAX_BYTES = 64 << 20

State = dict[str, torch.Tensor]


class RecentStates:
    def __init__(self, model: nn.Module) -> None:
        size = sum(t.numel() * t.element_size() for t in model.state_dict().values())
        self.capacity = max(1, min(MAX_EPOCHS, MAX_BYTES // max(1, size)))
        self.slots: list[tuple[int, State]] = []
        self.next = 0

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
