"""What a model that learnt nothing scores on the validation split: the bar a run has to clear
before any other judgement of it means something (api.diagnosis: "not learning").

- classification: always answering the training split's class frequencies (its loss) and
  always answering its most frequent class (its accuracy); frequencies get half a count of
  prior each, so a class the training split lacks does not make the loss infinite;
- regression: always answering the training targets' mean (0: they are standardised).

Both are scored with the run's own loss function, as its validation loss is.
"""

from __future__ import annotations

import torch
from torch import nn

from trainer.data import DataBundle
from trainer.events import Baseline


@torch.no_grad()
def baseline(loss_fn: nn.Module, data: DataBundle) -> Baseline:
    n_val = len(data.y_val)
    if data.n_classes is None:
        guess = torch.zeros_like(data.y_val)
        return Baseline(n_val=n_val, val_loss=float(loss_fn(guess, data.y_val)))
    counts = torch.bincount(data.y_train, minlength=data.n_classes).double()
    frequencies = (counts + 0.5) / (counts.sum() + 0.5 * data.n_classes)
    logits = frequencies.log().float().expand(n_val, -1)
    majority = int(counts.argmax())
    return Baseline(
        n_val=n_val,
        n_classes=data.n_classes,
        val_loss=float(loss_fn(logits, data.y_val)),
        val_accuracy=float((data.y_val == majority).double().mean()),
    )
