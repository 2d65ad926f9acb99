"""TensorBoard event files as PyTorch users write them (torch.utils.tensorboard.SummaryWriter),
for the tests that read them."""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from torch.utils.tensorboard import SummaryWriter


def event_file(epochs: int = 10, seed: int = 0) -> bytes:
    """One run's event file: Loss/train, Loss/val (turning up after epoch 5), Accuracy/val per
    epoch, and fc.weight's histogram every 5 epochs."""
    torch.manual_seed(seed)
    layer = torch.nn.Linear(8, 4)
    with tempfile.TemporaryDirectory() as folder:
        with SummaryWriter(folder) as writer:
            for epoch in range(1, epochs + 1):
                writer.add_scalar("Loss/train", 1.0 / epoch, epoch)
                writer.add_scalar("Loss/val", 0.5 + abs(epoch - 5) * 0.05, epoch)
                writer.add_scalar("Accuracy/val", epoch / (epochs + 1), epoch)
                if epoch % 5 == 0:
                    writer.add_histogram("fc.weight", layer.weight * epoch, epoch)
        (path,) = Path(folder).glob("events.out.tfevents.*")
        return path.read_bytes()
