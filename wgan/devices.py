"""Choosing the torch device a spec asks for."""

from __future__ import annotations

import torch


class DeviceUnavailable(RuntimeError):
    """The spec asks for a device this machine does not have."""


def pick_device(name: str) -> torch.device:
    """`auto` → CUDA when present, else CPU; `cuda` without a GPU is an error, not a silent CPU run."""
    if name == "cuda":
        if not torch.cuda.is_available():
            raise DeviceUnavailable("the job asks for device 'cuda' but this worker has no usable GPU")
        return torch.device("cuda")
    if name == "auto" and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")
