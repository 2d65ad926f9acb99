"""Selection optimism, in-process: a sweep of near-equal learning rates (20 by default, 1%
apart) with k folds of a 300-example training subset and a held-out test split (the design of
tests/e2e/test_studies.py's sweep), trained here by the trainer alone. Prints the winner (best
mean validation accuracy), its validation and test accuracy, their difference (optimism) with
a 95% Student's t interval over the folds, and the sweep's average optimism.

    python -m bench.optimism
    python -m bench.optimism --configs 20 --folds 3 --epochs 10
"""

from __future__ import annotations

import argparse
import statistics

from api.studies.stats import mean_interval
from trainer.loop import train
from trainer.spec import JobSpec


def scores(lr: float, fold: int, folds: int, epochs: int) -> tuple[float, float]:
    """(validation accuracy at the evaluated epoch, test accuracy there)."""
    spec = {
        "device": "cpu",
        "epochs": epochs,
        "dataset": {
            "normalize": "unit",
            "train_subset": 300,
            "test_fraction": 0.2,
            "folds": {"k": folds, "index": fold},
        },
        "model": {"hidden": [64]},
        "histograms": {"enabled": False},
        "optimizer": {"lr": lr},
    }
    result = train(JobSpec.model_validate(spec))
    test = next(e for e in result.evaluations if e.split == "test")
    assert test.accuracy is not None
    return result.history[-1]["val_accuracy"], test.accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=int, default=20)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    lrs = [round(3e-3 * (1 + 0.01 * i), 7) for i in range(args.configs)]
    sweep = {lr: [scores(lr, f, args.folds, args.epochs) for f in range(args.folds)] for lr in lrs}
    winner = max(lrs, key=lambda lr: statistics.mean(v for v, _ in sweep[lr]))
    val = statistics.mean(v for v, _ in sweep[winner])
    test = statistics.mean(t for _, t in sweep[winner])
    ci = mean_interval([v - t for v, t in sweep[winner]])
    average = statistics.mean(v - t for runs in sweep.values() for v, t in runs)
    print(f"sweep: {args.configs} learning rates x {args.folds} folds, {args.epochs} epochs")
    print(f"winner: lr {winner:g}  val accuracy {val:.2%}  test accuracy {test:.2%}")
    print(
        f"winner's optimism: {ci['mean']:+.2%}  95% interval "
        f"[{ci['ci_low'] or 0:+.2%}, {ci['ci_high'] or 0:+.2%}] over {ci['n']} folds"
    )
    print(f"the sweep's average optimism: {average:+.2%}")


if __name__ == "__main__":
    main()
