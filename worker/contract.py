"""What the API's enqueuer and the workers must agree on. Celery only: no torch, no trainer.

The API sends tasks by name (it never imports the task code), so this module is the contract.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

TASK_NAME = "fitlens.train_run"
QUEUES = ("cpu", "gpu")


def queue_for(device: str, auto_queue: str = "cpu") -> str:
    """Runs that ask for cuda go to GPU workers, cpu to CPU workers, auto where configured."""
    return {"cuda": "gpu", "cpu": "cpu"}.get(device, auto_queue)


def broker_transport_options(broker_url: str, broker_dir: str) -> dict[str, Any]:
    if broker_url.startswith("filesystem://"):
        # kombu's filesystem transport: messages are files in one folder both sides share. Its
        # exchange tables go there too (kombu's default is ./control, in whatever directory the
        # worker happens to start).
        folder = Path(broker_dir).resolve()
        for sub in ("queue", "processed", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        return {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            "control_folder": str(folder / "control"),
            "store_processed": False,
        }
    # Redis: one list per priority, served lowest first (the API's fair share across teams,
    # api.runs.queue); both sides must agree on the steps.
    return {"priority_steps": list(range(10)), "sep": ":", "queue_order_strategy": "priority"}
