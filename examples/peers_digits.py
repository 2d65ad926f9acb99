"""One PyTorch loop on scikit-learn's digits, logged the way you already log: with MLflow's
client (``--log mlflow``) or TensorBoard's ``SummaryWriter`` (``--log tensorboard``). Nothing in
it knows fitlens:

    MLFLOW_TRACKING_URI=http://localhost:8000/mlflow MLFLOW_TRACKING_TOKEN=fl_... \\
        python examples/peers_digits.py --log mlflow
    python examples/peers_digits.py --log tensorboard --logdir tb-logs
    fitlens import tensorboard tb-logs --project from-tensorboard

A wide MLP on 200 digits overfits within a few epochs: fitlens's diagnosis says where.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
from sklearn.datasets import load_digits
from torch import nn


def train(epochs: int, log: Callable[[dict[str, float], int], None], model: nn.Module) -> None:
    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x / 16, dtype=torch.float32)
    y = torch.tensor(y)
    x_train, y_train, x_val, y_val = x[:200], y[:200], x[1000:1500], y[1000:1500]
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(1, epochs + 1):
        model.train()
        for i in range(0, len(x_train), 50):
            optimizer.zero_grad()
            loss_fn(model(x_train[i : i + 50]), y_train[i : i + 50]).backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            logits = model(x_val)
            log(
                {
                    "train_loss": loss_fn(model(x_train), y_train).item(),
                    "val_loss": loss_fn(logits, y_val).item(),
                    "val_accuracy": (logits.argmax(1) == y_val).float().mean().item(),
                },
                epoch,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--log", choices=("mlflow", "tensorboard"), required=True)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--logdir", default="tb-logs", help="TensorBoard's log directory")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10))
    if args.log == "mlflow":
        import mlflow

        mlflow.set_experiment("digits-peers")
        with mlflow.start_run(run_name="mlp, mlflow") as run:
            mlflow.log_params({"lr": 0.01, "epochs": args.epochs, "optimizer": "adam"})

            def log_mlflow(values: dict[str, float], epoch: int) -> None:
                mlflow.log_metrics(values, step=epoch)

            train(args.epochs, log_mlflow, model)
        print(f"mlflow run {run.info.run_id} logged")
        return
    from torch.utils.tensorboard import SummaryWriter

    # TensorBoard's usual tags: Loss/train, Loss/val, Accuracy/val.
    tags = {"train_loss": "Loss/train", "val_loss": "Loss/val", "val_accuracy": "Accuracy/val"}
    with SummaryWriter(f"{args.logdir}/mlp") as writer:

        def log(values: dict[str, float], epoch: int) -> None:
            for key, value in values.items():
                writer.add_scalar(tags[key], value, epoch)
            writer.add_histogram("0.weight", model[0].weight, epoch)

        train(args.epochs, log, model)
    print(f"tensorboard logs in {args.logdir}/mlp")


if __name__ == "__main__":
    main()
