"""Weight snapshots over epochs (seed 003's figure: the whole fc1 matrix, and how it changes):
on schedule the tensors come to the host (one copy at those epochs only), and copies of the
best and of the latest epoch's weights stay on the device until the run ends, when the best
(and an early last epoch) are sent too."""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from trainer.events import SnapshotWhy, WeightSnapshot
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
        keep = spec.enabled and bool(self.params)
        self.best = [p.detach().clone() for _, p in self.params] if keep else []
        self.latest = [p.detach().clone() for _, p in self.params] if keep else []
        self.best_epoch = self.latest_epoch = 0
        self.sent: set[int] = set()

    def after_epoch(self, epoch: int, is_best: bool) -> list[WeightSnapshot]:
        """The epoch's snapshots when it is on schedule; keeps the best and the latest."""
        if not self.best:
            return []
        if is_best:
            for copy, (_, param) in zip(self.best, self.params, strict=True):
                copy.copy_(param.detach())
            self.best_epoch = epoch
        for copy, (_, param) in zip(self.latest, self.params, strict=True):
            copy.copy_(param.detach())
        self.latest_epoch = epoch
        if epoch not in self.scheduled:
            return []
        self.sent.add(epoch)
        why: list[SnapshotWhy] = (
            ["first"] if epoch == 1 else ["last"] if epoch == self.last_epoch else ["every"]
        )
        if is_best:
            why.append("best")  # the best so far: an earlier best may follow at the end
        return [self._snapshot(n, p, epoch, why) for n, p in self.params]

    def at_end(
        self, onset: tuple[int, dict[str, torch.Tensor]] | None = None
    ) -> list[WeightSnapshot]:
        """The best epoch's weights, the last epoch's when it was not on schedule (an early
        stop, a cancel), and the onset epoch's (its state_dict) when it was kept."""
        if not self.best:
            return []
        out = []
        if onset is not None:
            epoch, state = onset
            out += [self._snapshot(n, state[n], epoch, ["onset"]) for n, _ in self.params]
        if self.latest_epoch and self.latest_epoch not in self.sent:
            out += [
                self._snapshot(n, t, self.latest_epoch, ["last"])
                for (n, _), t in zip(self.params, self.latest, strict=True)
            ]
        if self.best_epoch:
            out += [
                self._snapshot(n, t, self.best_epoch, ["best"])
                for (n, _), t in zip(self.params, self.best, strict=True)
            ]
        return out

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
