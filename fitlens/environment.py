"""What a run logged from your own loop ran with, recorded with it as a worker's run is:
Python, the platform, fitlens's version and, when your script has imported torch, its version
and device (the client never imports torch itself)."""

from __future__ import annotations

import importlib.metadata
import platform
import sys
from typing import Any


def client_environment() -> dict[str, str]:
    info = {
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "fitlens": _version("fitlens"),
    }
    torch: Any = sys.modules.get("torch")
    if torch is not None:
        info["torch"] = str(getattr(torch, "__version__", "unknown"))
        try:
            cuda = torch.cuda.is_available()
            info["device"] = f"cuda ({torch.cuda.get_device_name(0)})" if cuda else "cpu"
        except Exception:  # whatever torch says, the run still starts
            pass
    return info


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
