"""fitlens from Python: submit and follow runs and studies, read them as pandas and numpy,
and log runs you train in your own loop.

    from fitlens import Client
    client = Client("http://localhost:8000", token)      # or Client() from the environment
    run = client.submit({"epochs": 20, "model": {"dropout": 0.5}}, project="mnist")
    run.wait(progress=True)
    run.curves(["train_loss", "val_loss"]).plot()

Installs without torch, Celery or the server (``pip install 'fitlens[client]'``).
"""

from fitlens.client import Client
from fitlens.errors import FitlensError
from fitlens.logger import LoggedRun
from fitlens.runs import Run, Study

__all__ = ["Client", "FitlensError", "LoggedRun", "Run", "Study"]
