"""What the per-class evaluation while training costs a run: the default spec (or another)
trained with it (every few epochs, both splits, and the per-batch loss) and without it,
alternately, in one process.

    python -m bench.evaluation_cost --rounds 5
    python -m bench.evaluation_cost --epochs 40 --spec '{"model": {"hidden": [1024]}}'

Prints each variant's median seconds per run (training, every epoch's scoring, the final
evaluations) and the ratio on/off; the budget (issue 24) is at most 1.20.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

from trainer.loop import train
from trainer.spec import JobSpec

OFF = {"enabled": False, "batch_points": 0}


def seconds(spec: JobSpec) -> float:
    started = time.perf_counter()
    train(spec)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=None, help="default: the spec's (20)")
    parser.add_argument("--spec", default="{}", help="JSON merged over the default spec")
    args = parser.parse_args()
    base: dict[str, Any] = {"device": "cpu", **json.loads(args.spec)}
    if args.epochs:
        base["epochs"] = args.epochs
    on = JobSpec.model_validate(base)
    off = JobSpec.model_validate({**base, "evaluation": OFF})
    seconds(on)  # warm-up: data loading and first-call costs, for neither variant
    timings: dict[str, list[float]] = {"on": [], "off": []}
    for _ in range(args.rounds):
        timings["on"].append(seconds(on))
        timings["off"].append(seconds(off))
    on_s, off_s = (statistics.median(timings[k]) for k in ("on", "off"))
    evaluated = sorted(on.evaluation.epochs(on.epochs))
    print(f"spec: {on.epochs} epochs, per class at epochs {evaluated}")
    print(f"with per-class evaluation   : {on_s:.3f} s per run")
    print(f"without                     : {off_s:.3f} s per run")
    print(f"ratio (budget 1.20)         : {on_s / off_s:.3f}")


if __name__ == "__main__":
    main()
