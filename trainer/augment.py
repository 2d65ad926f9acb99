"""Data augmentation of training images on the device: each example of each batch gets its
own random shift, rotation and zoom (one affine warp of the whole batch: ``affine_grid`` and
``grid_sample``, no per-example Python loop), drawn from the augmentation's own generator,
so it never disturbs the shuffling or the model's seed. torchvision's v2 transforms draw one
set of parameters per call (one warp for the whole batch) from the global generator, which
is why they are not used here."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from trainer.dataspec import AugmentationSpec


class Augmenter:
    def __init__(self, spec: AugmentationSpec, device: torch.device) -> None:
        self.spec = spec
        self.generator = torch.Generator(device=device).manual_seed(spec.seed)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """(batch, channels, height, width) images warped; the edges repeat their border (the
        background) where a warp uncovers the frame."""
        spec, n = self.spec, images.shape[0]
        u = torch.rand(n, 4, device=images.device, generator=self.generator) * 2 - 1
        angle = u[:, 0] * math.radians(spec.rotate)
        zoom = 1 + u[:, 1] * spec.scale
        # affine_grid's coordinates run from -1 to 1: a side is 2 long.
        shift_x, shift_y = 2 * spec.shift * u[:, 2], 2 * spec.shift * u[:, 3]
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        theta = torch.stack(
            [torch.stack([cos, -sin, shift_x], 1), torch.stack([sin, cos, shift_y], 1)], 1
        )
        grid = F.affine_grid(theta.to(images.dtype), list(images.shape), align_corners=False)
        return F.grid_sample(images, grid, padding_mode="border", align_corners=False)
