"""The device a run trains on, and the fault of asking for one the machine lacks."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

NVIDIA_DRIVER = Path("/proc/driver/nvidia/version")
"""Present wherever CUDA can work on Linux; without it, ``cuda`` is refused without torch."""


class DeviceUnavailable(RuntimeError):
    """``train.device`` names a device this machine does not have: a fault of the machine."""


def resolve_device(name: str) -> torch.device:
    """``auto`` as the device it means here; raise :class:`DeviceUnavailable` for a missing one.

    Checks that need no torch come first: a bad spec is refused in a fraction of a second
    instead of after the seconds torch takes to import.
    """
    if name.startswith("cuda") and not NVIDIA_DRIVER.exists():
        raise DeviceUnavailable(f"train.device is {name!r} but this machine has no NVIDIA driver")
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceUnavailable(f"train.device is {name!r} but torch sees no CUDA device")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceUnavailable(
                f"train.device is {name!r} but torch sees {torch.cuda.device_count()} CUDA"
                " device(s)"
            )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceUnavailable(f"train.device is {name!r} but torch sees no MPS (Apple) GPU")
    return device
