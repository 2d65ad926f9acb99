"""Weight statistics computed on the device; only the packed numbers cross to the host.

``pack_histograms`` returns one float64 tensor per epoch, so the loop can concatenate it with the
epoch's scalars and pay a single device-to-host copy (one sync) per epoch.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from trainer.events import ParamHistogram

# Per parameter: mean, std, min, max, l1, l2, near_zero, NaN / +Inf / -Inf counts, then bins+1
# edges, then bins counts.
_N_STATS = 10
# Bins at least this much of the values' magnitude wide: float64 (52-bit mantissa) then tells
# every edge apart, however large the values (a diverged weight of -2.5e16 gave 65 equal edges).
_MIN_RELATIVE_BIN = 2.0**-40


def pack_histograms(
    params: Sequence[tuple[str, torch.Tensor]], bins: int, near_zero: float
) -> torch.Tensor:
    """Histograms that any values can fill: bins span the finite values (NaN and +-Inf are
    counted apart), edges are finite and strictly increasing even for huge or constant values.
    All on the device: no value comes to the host here."""
    rows = []
    steps = torch.arange(bins + 1, dtype=torch.float64, device=params[0][1].device) / bins
    for _, param in params:
        flat = param.detach().reshape(-1).to(torch.float64)
        finite = torch.isfinite(flat)
        n_finite = finite.sum()
        inf = torch.full_like(flat, torch.inf)
        lo = torch.where(finite, flat, inf).min()
        hi = torch.where(finite, flat, -inf).max()
        none = n_finite == 0
        lo, hi = torch.where(none, 0.0, lo), torch.where(none, 0.0, hi)
        # Widen a range too narrow to split (constant, or tiny next to its magnitude) around its
        # centre; halves before subtracting so +-1.8e308 cannot overflow.
        # A constant (e.g. zero-initialised biases) gets a range of at least 1.
        least = torch.maximum(lo.abs(), hi.abs()) * (_MIN_RELATIVE_BIN * bins)
        least = torch.where(hi > lo, least, torch.clamp(least, min=1.0))
        narrow = (hi / 2 - lo / 2) * 2 < least
        centre = lo / 2 + hi / 2
        lo = torch.where(narrow, centre - least / 2, lo)
        hi = torch.where(narrow, centre + least / 2, hi)
        edges = lo * (1 - steps) + hi * steps
        position = (torch.where(finite, flat, lo) / 2 - lo / 2) / (hi / 2 - lo / 2)
        index = (position * bins).to(torch.int64).clamp_(0, bins - 1)
        counts = torch.bincount(index, weights=finite.to(torch.float64), minlength=bins)
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
                flat.isnan().sum().to(torch.float64),
                flat.isposinf().sum().to(torch.float64),
                flat.isneginf().sum().to(torch.float64),
            ]
        )
        rows.append(torch.cat([stats, edges, counts]))
    return torch.cat(rows)


def unpack_histograms(
    packed: list[float], params: Sequence[tuple[str, torch.Tensor]], bins: int, step: int
) -> list[ParamHistogram]:
    width = _N_STATS + 2 * bins + 1
    out = []
    for i, (name, param) in enumerate(params):
        row = packed[i * width : (i + 1) * width]
        mean, std, lo, hi, l1, l2, near_zero, nan, posinf, neginf = row[:_N_STATS]
        out.append(
            ParamHistogram(
                param=name,
                step=step,
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
                nan_count=int(nan),
                posinf_count=int(posinf),
                neginf_count=int(neginf),
            )
        )
    return out


def histogram_width(n_params: int, bins: int) -> int:
    return n_params * (_N_STATS + 2 * bins + 1)


def penalty(
    params: Sequence[torch.Tensor], l1: float, l2: float, l2_form: str = "squared"
) -> torch.Tensor:
    """l1 * sum|w| + l2 * sum w^2 (``l2_form`` "norm": l2 * sum of each tensor's ||w||_2) over
    the given tensors, as a device scalar."""
    total = torch.zeros((), dtype=torch.float64, device=params[0].device)
    if l1:
        total = total + l1 * torch.stack(torch._foreach_norm(list(params), 1)).double().sum()
    if l2:
        norms = torch.stack(torch._foreach_norm(list(params), 2)).double()
        total = total + l2 * (norms.sum() if l2_form == "norm" else norms.square().sum())
    return total
