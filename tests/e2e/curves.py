"""What a finished run's curves must hold: every per-epoch key once per epoch, and the
per-batch training loss as a bounded, duplicate-free series after them."""

from __future__ import annotations

from typing import Any

PER_BATCH = "train_loss_batch"


def assert_every_epoch_once(series: list[dict[str, Any]], epochs: int) -> None:
    for s in series:
        if s["key"] == PER_BATCH:
            steps = s["steps"]
            # At most 10 points an epoch (the default), strictly increasing: none twice.
            assert steps == sorted(set(steps)) and len(steps) <= 10 * epochs, s["key"]
            assert len(steps) >= epochs and s["total_points"] == len(steps)
            continue
        assert s["steps"] == list(range(1, epochs + 1)), s["key"]
        assert s["total_points"] == epochs
