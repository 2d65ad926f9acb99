"""Train in your own loop, log to fitlens: an MLP on scikit-learn's digits.

    FITLENS_URL=http://localhost:8000 FITLENS_TOKEN=fl_... python examples/own_loop_digits.py

(or `fitlens login URL` once). The loop is plain PyTorch; fitlens only gets ``run.log`` (a
queue append: the loop never waits on the network), ``run.log_histograms`` (binned on the
model's device) and, at the end, ``run.log_evaluation``. The run then has the same curves,
diagnosis, histograms, evaluation and dashboard page as a run a worker trained.
"""

from __future__ import annotations

import argparse

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

from fitlens import Client


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument(
        "--team", default=None, help="the team, when you are in several (else FITLENS_TEAM)"
    )
    args = parser.parse_args()

    x, y = load_digits(return_X_y=True)
    x_train, x_val, y_train, y_val = train_test_split(
        torch.tensor(x / 16, dtype=torch.float32), torch.tensor(y), test_size=0.2, random_state=0
    )
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(64, 256), nn.ReLU(), nn.Dropout(args.dropout), nn.Linear(256, 10)
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    loss_fn = nn.CrossEntropyLoss()
    params = {"lr": args.lr, "dropout": args.dropout, "epochs": args.epochs, "dataset": "digits"}

    with (
        Client(team=args.team) as client,
        client.start_run(
            project="own-loop", name="digits MLP, own loop", params=params, epochs=args.epochs
        ) as run,
    ):
        for epoch in range(1, args.epochs + 1):
            model.train()
            for batch in torch.randperm(len(x_train)).split(64):
                optimizer.zero_grad()
                loss_fn(model(x_train[batch]), y_train[batch]).backward()
                optimizer.step()
            model.eval()
            with torch.no_grad():
                train_out, val_out = model(x_train), model(x_val)
                train_loss, val_loss = loss_fn(train_out, y_train), loss_fn(val_out, y_val)
                metrics = {
                    "train_loss": train_loss.item(),
                    "val_loss": val_loss.item(),
                    "train_accuracy": (train_out.argmax(1) == y_train).float().mean().item(),
                    "val_accuracy": (val_out.argmax(1) == y_val).float().mean().item(),
                }
            metrics["gap"] = metrics["val_loss"] - metrics["train_loss"]
            run.log(metrics, step=epoch)
            run.log_histograms(model, step=epoch)
        with torch.no_grad():
            run.log_evaluation(y_val, model(x_val).softmax(1))
    print(f"run {run.id}: {client.url}/#/runs/{run.id}")


if __name__ == "__main__":
    main()
