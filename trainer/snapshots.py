"""Weight snapshots over epochs (seed 003's figure: the whole fc1 matrix, and how it changes):
on schedule the tensors come to the host (one copy at those epochs only); at the end the
best epoch's, the onset's (trainer.recent keeps both) and an early last epoch's are sent."""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from trainer.events import SnapshotWhy, WeightSnapshot
from trainer.recent import State
from trainer.spec import SnapshotSpec

DTYPES = {"float32": torch.float32, "float16": torch.float16}
LITTLE_ENDIAN = {"float32": "<f4", "float16": "<f2"}


class Snapshots:
    def __init__(
        self, spec: SnapshotSpec, epochs: int, named: Sequence[tuple[str, torch.Tensor]]
    ) -> None:
        self.spec = spec
        wanted = spec.params
        self.params = [
            (n, p) for n, p in named if (n in wanted if wanted else n.endswith("weight"))
        ]
        self.scheduled = spec.epochs(epochs)
        self.last_epoch = epochs
        self.enabled = spec.enabled and bool(self.params)
        self.sent: set[int] = set()
        self.last: list[WeightSnapshot] = []

    def after_epoch(self, epoch: int, is_best: bool) -> list[WeightSnapshot]:
        """The epoch's snapshots when it is on schedule."""
        if not self.enabled or epoch not in self.scheduled:
            return []
        self.sent.add(epoch)
        why: list[SnapshotWhy] = (
            ["first"] if epoch == 1 else ["last"] if epoch == self.last_epoch else ["every"]
        )
        if is_best:
            why.append("best")  # the best so far: an earlier best may follow at the end
        return [self._snapshot(n, p, epoch, why) for n, p in self.params]

    def training_ended(self, epoch: int, model: nn.Module) -> None:
        """The last epoch's weights when it was not on schedule (an early stop, a cancel),
        taken before a stopping rule restores the best ones."""
        if self.enabled and epoch and epoch not in self.sent:
            state = model.state_dict()
            self.last = [self._snapshot(n, state[n], epoch, ["last"]) for n, _ in self.params]

    def at_end(
        self, best: tuple[int, State] | None, onset: tuple[int, State] | None
    ) -> list[WeightSnapshot]:
        """The onset epoch's weights (when they were kept), the last epoch's (when not on
        schedule) and the best epoch's."""
        if not self.enabled:
            return []
        onset_epoch = self._each(onset, "onset") if onset is not None else []
        return onset_epoch + self.last + (self._each(best, "best") if best is not None else [])

    def _each(self, kept: tuple[int, State], why: SnapshotWhy) -> list[WeightSnapshot]:
        epoch, state = kept
        return [self._snapshot(n, state[n], epoch, [why]) for n, _ in self.params]

    def _snapshot(
        self, name: str, tensor: torch.Tensor, epoch: int, why: list[SnapshotWhy]
    ) -> WeightSnapshot:
        values, method = downsampled(tensor.detach().float(), self.spec.max_values)
        host = values.to(DTYPES[self.spec.dtype]).cpu().numpy()
        data = host.astype(LITTLE_ENDIAN[self.spec.dtype]).tobytes()  # row-major
        return WeightSnapshot(
            param=name,
            epoch=epoch,
            shape=list(values.shape),
            full_shape=list(tensor.shape),
            dtype=self.spec.dtype,
            why=why,
            method=method,
            data=base64.b64encode(data).decode("ascii"),
        )


def downsampled(tensor: torch.Tensor, max_values: int) -> tuple[torch.Tensor, str]:
    """The tensor whole when it fits in ``max_values``, else viewed as (rows, the rest) and
    average-pooled by the same whole factor along both axes until it fits."""
    if tensor.numel() <= max_values:
        return tensor, "whole"
    matrix = tensor.reshape(tensor.shape[0], -1) if tensor.dim() != 2 else tensor
    rows, cols = matrix.shape
    factor = math.ceil(math.sqrt(tensor.numel() / max_values))
    while math.ceil(rows / factor) * math.ceil(cols / factor) > max_values:
        factor += 1
    shape = (max(1, math.ceil(rows / factor)), max(1, math.ceil(cols / factor)))
    pooled = F.adaptive_avg_pool2d(matrix[None, None], shape)[0, 0]
    method = (
        f"average-pooled (torch adaptive_avg_pool2d) from {rows}x{cols} to "
        f"{shape[0]}x{shape[1]}: each value the mean of about {factor}x{factor} weights"
    )
    return pooled, method
