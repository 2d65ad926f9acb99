"""What watching the weights costs a run: the default spec (or another) trained, alternately
in one process, without snapshots and checkpoints, with either (both are on by default), and
with gradient and update histograms added; and the bytes a run's snapshots and checkpoints
store.

    python -m bench.weights_cost --rounds 5
    python -m bench.weights_cost --spec "$(cat examples/seed003_weight_heatmaps.json)"

Prints each variant's median seconds per run and per epoch, the added seconds per epoch and
the ratio against the run without snapshots. (Norms, drift and update ratios are always
measured: compare them with an earlier commit by ``python -m bench.ab --base REV
bench.train_speed``.)
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
from typing import Any

from bench.evaluation_cost import seconds
from trainer.callbacks import Callback
from trainer.events import EpochEnd, RunEnded
from trainer.loop import train
from trainer.spec import JobSpec


class SnapshotBytes(Callback):
    def __init__(self) -> None:
        self.bytes = self.count = self.checkpoint_bytes = 0

    def on_epoch_end(self, event: EpochEnd) -> None:
        self._add(event.snapshots)

    def on_run_end(self, event: RunEnded) -> None:
        self._add(event.snapshots)
        self.checkpoint_bytes = sum(c.size for c in event.checkpoints)

    def _add(self, snapshots: list[Any]) -> None:
        self.count += len(snapshots)
        self.bytes += sum(len(base64.b64decode(s.data)) for s in snapshots)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--spec", default="{}", help="JSON merged over the default spec")
    args = parser.parse_args()
    base: dict[str, Any] = {"device": "cpu", **json.loads(args.spec)}
    bare = {**base, "snapshots": {"enabled": False}, "checkpoints": {"keep": []}}
    variants = {
        "without snapshots, checkpoints": JobSpec.model_validate(bare),
        "with checkpoints (default)": JobSpec.model_validate({**bare, "checkpoints": {}}),
        "with snapshots (default)": JobSpec.model_validate({**bare, "snapshots": {}}),
        "+ grad and update histograms": JobSpec.model_validate(
            {**bare, "histograms": {"include": ["weight", "bias", "grad", "update"]}}
        ),
    }
    spec = JobSpec.model_validate(base)  # the default: snapshots and checkpoints
    stored = SnapshotBytes()
    train(spec, [stored])  # warm-up, and the bytes the snapshots take
    timings: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, variant in variants.items():
            timings[name].append(seconds(variant))
    plain = statistics.median(timings["without snapshots, checkpoints"])
    print(f"spec: {spec.epochs} epochs, snapshots at {sorted(spec.snapshots.epochs(spec.epochs))}")
    for name in variants:
        median = statistics.median(timings[name])
        print(
            f"{name:<30}: {median:.3f} s per run, {median / spec.epochs * 1000:.2f} ms per "
            f"epoch ({(median - plain) / spec.epochs * 1000:+.2f} ms), ratio {median / plain:.3f}"
        )
    print(f"snapshot bytes per run        : {stored.bytes:,} in {stored.count} snapshots")
    print(f"checkpoint bytes per run      : {stored.checkpoint_bytes:,} (best and last)")


if __name__ == "__main__":
    main()
