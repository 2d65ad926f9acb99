"""fitlens trainer: turns a JobSpec into a training run and reports what happened.

Importing the package (and ``trainer.spec`` / ``trainer.events``) does not import torch, so the
API can validate specs and parse events without a deep-learning stack; ``trainer.run`` does.
"""

from trainer.spec import JobSpec

__all__ = ["JobSpec"]
