"""Weight statistics computed on the device; only the packed numbers cross to the host.

``pack_histograms`` returns one float64 tensor per epoch, so the loop can concatenate it with the
epoch's scalars and pay a single device-to-host copy (one sync) per epoch.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from trainer.events import ParamHistogram

# Per parameter: mean, std, min, max, l1, l2, near_zero, then bins+1 edges, then bins counts.
_N_STATS = 7


def pack_histograms(
    params: Sequence[tuple[str, torch.Tensor]], bins: int, near_zero: float
) -> torch.Tensor:
    rows = []
    steps = torch.arange(bins + 1, dtype=torch.float64, device=params[0][1].device) / bins
    for _, param in params:
        flat = param.detach().reshape(-1).to(torch.float64)
        lo, hi = flat.min(), flat.max()
        # A constant tensor (e.g. zero-initialised biases) still gets a valid, non-empty range,
        # chosen on the device so no value needs to come to the host.
        constant = hi <= lo
        lo = torch.where(constant, lo - 0.5, lo)
        span = torch.where(constant, torch.ones_like(lo), hi - lo)
        index = ((flat - lo) / span * bins).to(torch.int64).clamp_(0, bins - 1)
        counts = torch.bincount(index, minlength=bins).to(torch.float64)
        abs_flat = flat.abs()
        stats = torch.stack(
            [
                flat.mean(),
                flat.std(correction=0),
                flat.min(),
                flat.max(),
                abs_flat.sum(),
                flat.square().sum().sqrt(),
                (abs_flat < near_zero).to(torch.float64).mean(),
            ]
        )
        rows.append(torch.cat([stats, lo + span * steps, counts]))
    return torch.cat(rows)


def unpack_histograms(
    packed: list[float], params: Sequence[tuple[str, torch.Tensor]], bins: int, epoch: int
) -> list[ParamHistogram]:
    width = _N_STATS + 2 * bins + 1
    out = []
    for i, (name, param) in enumerate(params):
        row = packed[i * width : (i + 1) * width]
        mean, std, lo, hi, l1, l2, near_zero = row[:_N_STATS]
        out.append(
            ParamHistogram(
                param=name,
                epoch=epoch,
                numel=param.numel(),
                edges=row[_N_STATS : _N_STATS + bins + 1],
                counts=[int(c) for c in row[_N_STATS + bins + 1 :]],
                mean=mean,
                std=std,
                min=lo,
                max=hi,
                l1=l1,
                l2=l2,
                near_zero=near_zero,
            )
        )
    return out


def histogram_width(n_params: int, bins: int) -> int:
    return n_params * (_N_STATS + 2 * bins + 1)


def penalty(params: Sequence[torch.Tensor], l1: float, l2: float) -> torch.Tensor:
    """l1 * sum|w| + l2 * sum w^2 over the given tensors, as a device scalar."""
    total = torch.zeros((), dtype=torch.float64, device=params[0].device)
    if l1:
        total = total + l1 * torch.stack(torch._foreach_norm(list(params), 1)).double().sum()
    if l2:
        total = (
            total + l2 * torch.stack(torch._foreach_norm(list(params), 2)).double().square().sum()
        )
    return total
