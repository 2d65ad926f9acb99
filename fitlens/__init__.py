"""fitlens from Python: submit and follow runs and studies, read them as pandas and numpy,
and log runs you train in your own loop.

    from fitlens import Client
    client = Client("http://localhost:8000", token)      # or Client() from the environment
    run = client.submit({"epochs": 20, "model": {"dropout": 0.5}}, project="mnist")
    run.wait(progress=True)
    run.curves(["train_loss", "val_loss"]).plot()

Installs without torch, Celery or the server (``pip install 'fitlens[client]'``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fitlens.client import Client
    from fitlens.errors import FitlensError
    from fitlens.logger import LoggedRun
    from fitlens.runs import Run, Study

__all__ = ["Client", "FitlensError", "LoggedRun", "Run", "Study"]

# Loaded on first use, so that a part that needs only numpy (fitlens.scoring, which the
# trainer imports) does not pull in the HTTP client.
_HOMES = {
    "Client": "fitlens.client",
    "FitlensError": "fitlens.errors",
    "LoggedRun": "fitlens.logger",
    "Run": "fitlens.runs",
    "Study": "fitlens.runs",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'fitlens' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
