"""Seconds per epoch: the seeds' own training loop against fitlens' trainer, same work.

Both train the same spec on the same tensors from the same initial weights in the same data
order (``--order dataloader``: the seed loop shuffles as the articles do, from the global RNG),
with validation and weight histograms every epoch. The seed loop is the one the articles show
(seed 000/001): a DataLoader with batch 64, ``loss.item()`` after every batch, an accuracy pass
over the training set, and numpy histograms of each parameter.

    python bench/train_speed.py --data digits --epochs 20
    python bench/train_speed.py --data mnist-sized --epochs 5

Prints per-epoch seconds (median over epochs 2..N, so one-off warm-up is not counted), the
speed-up, and each loop's final validation accuracy.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler, TensorDataset

from trainer.data import load_data
from trainer.loop import device_name, resolve_device, train
from trainer.models import build_loss, build_model, build_optimizer
from trainer.spec import JobSpec

SPECS: dict[str, dict[str, Any]] = {
    # scikit-learn's 8x8 digits, seed 000's MLP.
    "digits": {"dataset": {"name": "digits"}},
    # MNIST-sized: 60,000 train + 10,000 validation examples of 784 features, 10 classes.
    "mnist-sized": {
        "dataset": {
            "name": "synthetic",
            "val_fraction": 1 / 7,
            "synthetic": {
                "n_samples": 70_000,
                "shape": [784],
                "n_classes": 10,
                "class_sep": 0.8,
                "label_noise": 0.05,
            },
        }
    },
}


class TrainerOrder(Sampler[int]):
    """The trainer's data order (trainer.loop): one ``torch.randperm`` an epoch from a generator
    of its own, seeded with the spec's seed, on the device. DataLoader's ``shuffle=True`` draws
    its order from the global RNG instead, and a different order is a different run: on
    MNIST-sized data two orders end about 1 pp apart in validation accuracy, which says nothing
    of either loop. With this sampler both loops see the same batches, so they must agree."""

    def __init__(self, n: int, seed: int, device: torch.device) -> None:
        self.n, self.device = n, device
        self.generator = torch.Generator(device=device).manual_seed(seed)

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int]:
        perm = torch.randperm(self.n, device=self.device, generator=self.generator)
        return iter(perm.tolist())


def seed_loop(spec: JobSpec, device: torch.device, order: str) -> tuple[list[float], float]:
    """The articles' loop, written as they write it (``order``: "trainer" feeds it the
    trainer's batches, "dataloader" shuffles as the articles do)."""
    data = load_data(spec, torch.device("cpu"))  # DataLoader-fed, as in the seeds
    torch.manual_seed(spec.seed)
    model = build_model(spec, data.input_shape, data.n_classes or 1).to(device)
    loss_fn = build_loss(spec)
    optimizer = build_optimizer(spec, list(model.parameters()))
    train_set = TensorDataset(data.x_train, data.y_train)
    if order == "trainer":
        sampler = TrainerOrder(len(train_set), spec.seed, device)
        trn_dl = DataLoader(train_set, batch_size=spec.batch_size, sampler=sampler)
    else:
        trn_dl = DataLoader(train_set, batch_size=spec.batch_size, shuffle=True)
    # The training accuracy pass in its own loader: another pass of trn_dl would draw
    # another order (and the accuracy does not depend on it).
    trn_eval_dl = DataLoader(train_set, batch_size=spec.batch_size, shuffle=False)
    val_dl = DataLoader(
        TensorDataset(data.x_val, data.y_val), batch_size=spec.batch_size, shuffle=False
    )
    times, val_accuracy = [], 0.0
    for _ in range(spec.epochs):
        t0 = time.perf_counter()
        model.train()
        train_losses = []
        for x, y in trn_dl:
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
            train_losses.append(loss.item())
        model.eval()
        with torch.no_grad():
            train_correct = 0
            for x, y in trn_eval_dl:
                x, y = x.to(device), y.to(device)
                train_correct += (model(x).argmax(1) == y).sum().item()
            val_loss, correct = 0.0, 0
            for x, y in val_dl:
                x, y = x.to(device), y.to(device)
                out = model(x)
                val_loss += loss_fn(out, y).item() * len(y)
                correct += (out.argmax(1) == y).sum().item()
        for _, param in model.named_parameters():
            np.histogram(param.detach().cpu().numpy().ravel(), bins=spec.histograms.bins)
        val_accuracy = correct / len(data.y_val)
        times.append(time.perf_counter() - t0)
    return times, val_accuracy


def fitlens_loop(spec: JobSpec) -> tuple[list[float], float]:
    result = train(spec)
    return [m["epoch_seconds"] for m in result.history], result.history[-1]["val_accuracy"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=sorted(SPECS), default="digits")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--hidden", type=int, nargs="+", default=[128])
    parser.add_argument(
        "--order",
        choices=["trainer", "dataloader"],
        default="trainer",
        help="the seed loop's data order: the trainer's (equal work) or DataLoader's shuffle",
    )
    args = parser.parse_args()

    spec = JobSpec.model_validate(
        {
            **SPECS[args.data],
            "model": {"kind": "mlp", "hidden": args.hidden},
            "optimizer": {"name": "adam", "lr": 1e-3},
            "epochs": args.epochs,
            "batch_size": 64,
            "seed": 0,
            "device": args.device,
            "histograms": {"enabled": True, "bins": 64},
        }
    )
    device = resolve_device(spec.device)
    load_data(spec, device)  # build the (cached) data set before either clock starts
    print(
        f"device: {device_name(device)}; data: {args.data}; model: mlp {args.hidden}; "
        f"batch {spec.batch_size}; {spec.epochs} epochs; validation + histograms every epoch; "
        f"the seed loop's data order: {args.order}'s"
    )

    seed_times, seed_acc = seed_loop(spec, device, args.order)
    fit_times, fit_acc = fitlens_loop(spec)

    def per_epoch(times: list[float]) -> float:
        return statistics.median(times[1:] if len(times) > 1 else times)

    seed_s, fit_s = per_epoch(seed_times), per_epoch(fit_times)
    print(f"seed loop : {seed_s:8.4f} s/epoch   final val accuracy {100 * seed_acc:6.2f}%")
    print(f"fitlens   : {fit_s:8.4f} s/epoch   final val accuracy {100 * fit_acc:6.2f}%")
    gap_pp = 100 * abs(seed_acc - fit_acc)
    print(
        f"speed-up  : {seed_s / fit_s:8.2f}x   accuracy difference {gap_pp:.2f} pp "
        f"({'within' if gap_pp <= 0.5 else 'NOT within'} 0.5 pp)"
    )


if __name__ == "__main__":
    main()
