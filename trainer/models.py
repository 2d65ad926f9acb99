"""Model, loss, optimizer and LR-schedule builders from a JobSpec.

Layers are named like the seeds' code (fc1, fc2, ..., conv1, ...), so parameter names in
histograms read "fc1.weight" rather than "3.weight".
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
from torch import nn

from trainer.spec import (
    MAXIMISED_METRICS,
    CNNSpec,
    CosineSpec,
    InitSpec,
    JobSpec,
    MLPSpec,
    ReduceOnPlateauSpec,
    StepSpec,
)

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "leaky_relu": nn.LeakyReLU,
}


def build_model(spec: JobSpec, input_shape: tuple[int, ...], n_outputs: int) -> nn.Module:
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    model = spec.model
    act = _ACTIVATIONS[model.activation]
    if isinstance(model, CNNSpec):
        channels, height, width = input_shape
        for i, out_channels in enumerate(model.channels, start=1):
            layers[f"conv{i}"] = nn.Conv2d(channels, out_channels, kernel_size=3, padding=1)
            layers[f"act_conv{i}"] = act()
            layers[f"pool{i}"] = nn.MaxPool2d(2)
            channels, height, width = out_channels, height // 2, width // 2
        layers["flatten"] = nn.Flatten()
        features = channels * height * width
    else:
        assert isinstance(model, MLPSpec)
        layers["flatten"] = nn.Flatten()
        if model.input_dropout:
            layers["input_dropout"] = nn.Dropout(model.input_dropout)
        features = math.prod(input_shape)
    for i, width_out in enumerate(model.hidden, start=1):
        layers[f"fc{i}"] = nn.Linear(features, width_out)
        layers[f"act{i}"] = act()
        if model.dropout:
            layers[f"dropout{i}"] = nn.Dropout(model.dropout)
        features = width_out
    layers[f"fc{len(model.hidden) + 1}"] = nn.Linear(features, n_outputs)
    net = nn.Sequential(layers)
    _initialise(net, model.init)
    return net


def _initialise(net: nn.Module, init: InitSpec) -> None:
    if init.scheme == "default":
        return  # PyTorch's own (Kaiming-uniform) initialisation
    for module in net.modules():
        if not isinstance(module, nn.Linear | nn.Conv2d):
            continue
        with torch.no_grad():
            if init.scheme == "normal":  # seed 003: weight.normal_(0, 0.01), bias.fill_(0)
                module.weight.normal_(0.0, init.std)
            elif init.scheme == "xavier_uniform":
                nn.init.xavier_uniform_(module.weight)
            else:
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            if module.bias is not None:
                module.bias.zero_()


def build_loss(spec: JobSpec) -> nn.Module:
    return {"cross_entropy": nn.CrossEntropyLoss, "mse": nn.MSELoss, "l1": nn.L1Loss}[
        spec.resolved_loss
    ]()


def build_optimizer(spec: JobSpec, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    opt = spec.optimizer
    if opt.name == "sgd":
        return torch.optim.SGD(
            params,
            lr=opt.lr,
            momentum=opt.momentum,
            nesterov=opt.nesterov,
            weight_decay=opt.weight_decay,
            foreach=True,
        )
    cls = torch.optim.Adam if opt.name == "adam" else torch.optim.AdamW
    # foreach: one fused kernel per step for all tensors instead of one per parameter.
    return cls(params, lr=opt.lr, weight_decay=opt.weight_decay, foreach=True)


def build_scheduler(
    spec: JobSpec, optimizer: torch.optim.Optimizer
) -> torch.optim.lr_scheduler.LRScheduler | torch.optim.lr_scheduler.ReduceLROnPlateau | None:
    sched = spec.lr_schedule
    if isinstance(sched, ReduceOnPlateauSpec):
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer,
            mode="max" if sched.monitor in MAXIMISED_METRICS else "min",
            factor=sched.factor,
            patience=sched.patience,
            threshold=sched.threshold,
            threshold_mode=sched.threshold_mode,
            min_lr=sched.min_lr,
            cooldown=sched.cooldown,
        )
    if isinstance(sched, StepSpec):
        return torch.optim.lr_scheduler.StepLR(optimizer, sched.step_size, sched.gamma)
    if isinstance(sched, CosineSpec):
        return torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=sched.t_max or spec.epochs, eta_min=sched.eta_min
        )
    return None
