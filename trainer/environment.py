"""What a run trains with: versions and hardware, recorded with every attempt so that a result
can be traced to the stack that produced it."""

from __future__ import annotations

import platform
import shutil
import subprocess

import torch

from trainer.config import get_settings


def use_configured_threads() -> None:
    """FITLENS_TORCH_THREADS, applied before anything is measured or recorded: a record made
    before would name the threads the run did not train with."""
    if threads := get_settings().torch_threads:
        torch.set_num_threads(threads)


def environment(device: torch.device) -> dict[str, str]:
    """Python, PyTorch, torchvision, CUDA and cuDNN versions, the device, and on a GPU its
    driver (from nvidia-smi, when there is one)."""
    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(terse=True),
        "threads": str(torch.get_num_threads()),
    }
    try:
        import torchvision

        info["torchvision"] = torchvision.__version__
    except ImportError:
        pass
    if device.type == "cuda":
        info["device"] = torch.cuda.get_device_name(device)
        info["cuda"] = str(torch.version.cuda)
        info["cudnn"] = str(torch.backends.cudnn.version())
        driver = _nvidia_driver()
        if driver:
            info["driver"] = driver
    else:
        info["device"] = f"cpu ({platform.machine()}, {torch.get_num_threads()} threads)"
    return info


def _nvidia_driver() -> str | None:
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return out.strip().splitlines()[0] if out.strip() else None
