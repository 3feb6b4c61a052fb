"""The numeric precision and memory format of network passes, chosen by the hardware's capability.

`precision="auto"` runs the networks (teacher, pretraining, the distillation's pool models and
teacher) under bf16 autocast where the device has native bf16 matrix units, and in float32
elsewhere; "fp32" and "bf16" force one. Whatever is chosen, the weights, the optimiser and the
losses stay float32, and the KRR kernel, solve and outer loss stay float32/float64 (the features
are cast back to float32 before they reach them).

Which devices count (`bf16_matrix_units`, the rule of `auto`, easy to change in `AUTO_BF16_CPU`):

- CUDA: `torch.cuda.is_bf16_supported()` (Ampere and later). Untested on a GPU here.
- CPU with AMX tiles (Intel Sapphire Rapids and later): measured on such a Xeon (issue 14),
  bf16 matmul 1,080 GFLOP/s against 228 in float32, bf16 channels_last conv 1,325 against 177
  (NCHW) / 242 (channels_last) in float32.
- CPU with AVX512-BF16 but no AMX (e.g. the AMD EPYC of this project's 2-core machines): a probe
  on one such machine, shared with other jobs, measured bf16 matmul about 4× and bf16
  channels_last conv about 1.9× the float32 rate (`ssdd bench --probe` repeats it); `auto` picks
  bf16 there too. docs/performance.md has the numbers and the outer step's time.
- Anything else (older CPUs, MPS): float32.

Kernels restricted below a feature count as lacking it: with `ATEN_CPU_CAPABILITY` below AVX512
or `ONEDNN_MAX_CPU_ISA` below the feature's oneDNN level, `auto` picks float32, as it would on a
CPU without AVX-512 (the way issue 22 measures such a CPU on one with AVX-512).

Memory format and threads: measured once per machine and precision (`kit.fastpath`), not
assumed; `resolve_precision` applies the decision.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from typing import TypeVar

import torch
from torch import Tensor, nn

from ssdd_cli.errors import UsageError
from ssdd_cli.kit import cpu, fastpath

PRECISIONS = ("auto", "fp32", "bf16")
# The CPU capabilities under which `auto` picks bf16 (the rule of the module docstring).
AUTO_BF16_CPU = {"amx": True, "avx512_bf16": True}

M = TypeVar("M", bound=nn.Module)


@dataclass(frozen=True)
class Precision:
    """A resolved precision: "fp32" or "bf16" (never "auto") on a device type, and whether
    images and convolution weights use the channels_last memory format."""

    name: str = "fp32"
    device_type: str = "cpu"
    channels_last: bool = False

    @property
    def bf16(self) -> bool:
        return self.name == "bf16"

    def autocast(self) -> AbstractContextManager[object]:
        """The autocast context of network passes (a no-op context for float32)."""
        return torch.autocast(self.device_type, dtype=torch.bfloat16, enabled=self.bf16)

    def suited(self, module: nn.Module) -> Precision:
        """This precision for `module`: NCHW where it normalises with GroupNorm or InstanceNorm
        (instance norm is GroupNorm(c, c) here), whose CPU kernels are far slower in
        channels_last: a DC ConvNet step (width 128, 28 px, batch 100, bf16) took 1.22 s in
        channels_last against 0.40 s in NCHW on this project's AMD EPYC, GroupNorm alone 186 ms
        against 4 ms forward (issue 22). The measured layout (`kit.fastpath`) is that of the
        BatchNorm ConvNet step."""
        norms = (nn.GroupNorm, nn.InstanceNorm2d)
        if self.channels_last and any(isinstance(m, norms) for m in module.modules()):
            return replace(self, channels_last=False)
        return self

    def module(self, module: M) -> M:
        """`module` in this precision's memory format (its weights stay float32)."""
        return module.to(memory_format=torch.channels_last) if self.channels_last else module

    def images(self, x: Tensor) -> Tensor:
        """A batch (B, c, h, w) in this precision's memory format (same values)."""
        if self.channels_last and x.ndim == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def run(self, fn: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
        """fn(x) for a batch of images under autocast, returned in float32."""
        with self.autocast():
            return fn(self.images(x)).float()


FP32 = Precision()


# oneDNN's ISA levels in order (the values of ONEDNN_MAX_CPU_ISA), and the level each feature needs.
_ONEDNN_LEVELS = ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI",
                  "AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX10_1_512", "AVX512_CORE_AMX",
                  "AVX512_CORE_AMX_FP16", "AVX10_1_512_AMX", "AVX10_1_512_AMX_FP16")
_NEEDS = {"avx512_bf16": "AVX512_CORE_BF16", "amx": "AVX512_CORE_AMX"}


def cpu_capabilities() -> dict[str, bool]:
    """Whether this CPU has AMX tiles and AVX512-BF16 that torch's kernels may use: the hardware's
    features (`hardware_capabilities`) less those its kernels are restricted from (module
    docstring)."""
    return {name: has and _kernels_may_use(name) for name, has in hardware_capabilities().items()}


def _kernels_may_use(feature: str) -> bool:
    aten = getattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")()
    if aten != "AVX512":
        return False
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper()
    if cap in _ONEDNN_LEVELS:
        return _ONEDNN_LEVELS.index(cap) >= _ONEDNN_LEVELS.index(_NEEDS[feature])
    return True  # unset, ALL, DEFAULT or a level this list does not know: no restriction


def hardware_capabilities() -> dict[str, bool]:
    """Whether this CPU has AMX tiles and AVX512-BF16, detected at run time.

    torch's own checks (`torch.cpu._is_amx_tile_supported`, `_is_avx512_bf16_supported`, which
    ask oneDNN's CPU detection) where this torch has them, else the Linux kernel's CPU flags
    (`kit.cpu`).
    """
    found = {}
    for name, check in (("amx", "_is_amx_tile_supported"), ("avx512_bf16", "_is_avx512_bf16_supported")):
        fn = getattr(torch.cpu, check, None)
        found[name] = bool(fn()) if callable(fn) else None
    if None in found.values():
        flags = cpu.flags()
        found = {"amx": bool(found["amx"]) or "amx_tile" in flags,
                 "avx512_bf16": bool(found["avx512_bf16"]) or "avx512_bf16" in flags}
    return {k: bool(v) for k, v in found.items()}


def bf16_matrix_units(device: torch.device) -> bool:
    """Whether `auto` picks bf16 on `device` (the rule of the module docstring)."""
    if device.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        caps = cpu_capabilities()
        return any(caps[name] and AUTO_BF16_CPU[name] for name in caps)
    return False


def resolve_precision(name: str | None, device: torch.device, memory_format: str | None = None,
                      say: Callable[[str], None] | None = None) -> Precision:
    """"auto" (or None), "fp32" or "bf16" on `device` -> a `Precision`, in the memory format
    `kit.fastpath.decide` picks (`memory_format`: "auto", "nchw", "channels_last"; None: the
    environment's `SSDD_MEMORY_FORMAT`, else auto), whose thread count it also applies. `say`
    hears about a measurement (default: nobody)."""
    name = "auto" if name is None else name.lower()
    if name not in PRECISIONS:
        raise UsageError(f"unknown precision {name!r}; choose one of: {', '.join(PRECISIONS)}.",
                         option="precision")
    if name == "auto":
        name = "bf16" if bf16_matrix_units(device) else "fp32"
    if name == "bf16":
        if device.type not in ("cpu", "cuda"):
            raise UsageError(f"bf16 autocast is offered on CPU and CUDA devices, not {device.type}; "
                             "use fp32.", option="precision")
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise UsageError("this CUDA device has no bf16 support; use fp32.", option="precision")
    if device.type not in ("cpu", "cuda"):
        return Precision(name, device.type)
    path = fastpath.decide(device, name, memory_format, say=say)
    if path.threads != torch.get_num_threads() and device.type == "cpu":
        torch.set_num_threads(path.threads)
    return Precision(name, device.type, channels_last=path.channels_last)
