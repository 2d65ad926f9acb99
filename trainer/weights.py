"""How the weights move, each epoch, on the device: per weight tensor its norm, its drift
from the start (||W_t - W_0|| / ||W_0||) and the epoch's update ratio (||W_t - W_(t-1)|| /
||W_(t-1)||, the number people watch to judge a learning rate); and the tensors of the
gradient and update histograms. Copies of the first and the previous weights stay on the
device (twice the model's memory), so nothing here syncs with the host."""

from __future__ import annotations

from collections.abc import Sequence

import torch

# Metric keys: one word each, then the parameter's name ("drift/fc1.weight").
NORM, DRIFT, UPDATE_RATIO = "weight_norm", "drift", "update_ratio"


class WeightWatch:
    def __init__(self, named: Sequence[tuple[str, torch.Tensor]]) -> None:
        self.named = list(named)
        self.weights = [(n, p) for n, p in self.named if n.endswith("weight")]
        self.initial = [p.detach().clone() for _, p in self.weights]
        self.previous = {n: p.detach().clone() for n, p in self.named}

    def metrics(self) -> tuple[list[str], list[torch.Tensor]]:
        """The epoch's norm, drift and update ratio of each weight tensor, as device scalars
        (a zero denominator gives inf or nan, as stored)."""
        names: list[str] = []
        values: list[torch.Tensor] = []
        for (name, param), first in zip(self.weights, self.initial, strict=True):
            now, before = param.detach(), self.previous[name]
            names += [f"{NORM}/{name}", f"{DRIFT}/{name}", f"{UPDATE_RATIO}/{name}"]
            values += [
                now.norm(),
                (now - first).norm() / first.norm(),
                (now - before).norm() / before.norm(),
            ]
        return names, values

    def histogram_tensors(
        self, params: Sequence[tuple[str, torch.Tensor]], include: Sequence[str]
    ) -> list[tuple[str, torch.Tensor]]:
        """What the epoch's histograms show: each parameter, then (when asked) its last
        batch's gradient as "grad/<name>" and the epoch's update as "update/<name>"."""
        out = []
        for name, param in params:
            out.append((name, param))
            if "grad" in include:
                grad = param.grad if param.grad is not None else torch.zeros_like(param)
                out.append((f"grad/{name}", grad))
            if "update" in include:
                out.append((f"update/{name}", param.detach() - self.previous[name]))
        return out

    def advance(self) -> None:
        """The epoch is measured: its weights become the previous ones."""
        for name, param in self.named:
            self.previous[name].copy_(param.detach())
