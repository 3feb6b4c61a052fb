"""Device selection: `auto` picks cuda, then mps, then cpu; under torchrun "cuda" is this
process's GPU (its LOCAL_RANK). And the name of the hardware behind a device, for records.

torch is imported inside the functions, so the command line can offer the choices without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ssdd_cli.errors import UsageError

if TYPE_CHECKING:
    import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(name: str = "auto") -> torch.device:
    """Turn a device name ("auto", "cpu", "cuda[:i]", "mps") into a `torch.device`, refusing one
    this machine lacks."""
    import torch

    from ssdd_cli.kit.distributed import is_distributed, local_rank

    name = name.lower()
    if name in ("auto", "cuda") and torch.cuda.is_available() and is_distributed():
        return torch.device("cuda", local_rank())
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    base = name.split(":")[0]
    if base not in DEVICE_CHOICES:
        raise UsageError(f"unknown device {name!r}; use one of {', '.join(DEVICE_CHOICES)}.",
                         option="device")
    if base == "cuda" and not torch.cuda.is_available():
        raise UsageError("a CUDA device was asked for but no CUDA GPU is visible; use auto or cpu.",
                         option="device")
    if base == "mps" and not torch.backends.mps.is_available():
        raise UsageError("an MPS device was asked for but MPS is not available; use auto or cpu.",
                         option="device")
    return torch.device(name)


def hardware(device: torch.device | str = "cpu") -> str:
    """What runs work on `device`, for the records a figure is read from: a CUDA GPU's name, else
    the CPU's model name from /proc/cpuinfo ("AMD EPYC 9R14 96-Core Processor", as `lscpu` shows
    it on x86), else the platform's processor or machine name (ARM Linux, macOS, so also MPS's)."""
    import platform

    import torch

    from ssdd_cli.kit import cpu

    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu.model_name() or platform.processor() or platform.machine()
