"""A tiny throughput probe behind the precision rule (`kit.precision`): matrix products and 3×3
convolutions in float32 and bf16, NCHW and channels_last, on one device.

The sizes are those of the distillation's ConvNet at 32 px (a 2,048² matrix product; a batch of
64 maps 128 → 128 channels at 32×32). The rate is the best of `repeats` timed calls after two
warm-up calls, so other jobs on a shared machine lower it less than a mean would; a quiet
machine is still the one to decide on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F

MATMUL_N = 2048
CONV = (64, 128, 32)  # batch, channels in = out, side


@dataclass(frozen=True)
class ProbeRow:
    op: str  # "matmul" or "conv3x3"
    dtype: str  # "fp32" or "bf16"
    layout: str  # "-", "nchw" or "channels_last"
    gflops: float


def _best_seconds(fn: Callable[[], object], device: torch.device, repeats: int) -> float:
    def run() -> float:
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - t0

    run(), run()
    return min(run() for _ in range(repeats))


def probe_throughput(device: torch.device, repeats: int = 5, matmul_n: int = MATMUL_N,
                     conv: tuple[int, int, int] = CONV, bf16: bool = True,
                     callback: Callable[[str], None] | None = None) -> list[ProbeRow]:
    """GFLOP/s of a matrix product (matmul_n²) and a convolution (batch, channels, side) per dtype
    (and memory format). bf16=False leaves bf16 out: on a CPU without bf16 units its kernels are
    emulated, slow enough that the probe took minutes (issue 22), and `auto` never picks it there.
    `callback` is told what is measured next ("matmul fp32", ...)."""
    g = torch.Generator().manual_seed(0)
    rows = []
    dtypes = {"fp32": torch.float32, **({"bf16": torch.bfloat16} if bf16 else {})}
    say = callback or (lambda _: None)
    n = matmul_n
    for name, dtype in dtypes.items():
        say(f"matmul {name}")
        a, b = (torch.randn(n, n, generator=g).to(device, dtype) for _ in range(2))
        seconds = _best_seconds(partial(torch.matmul, a, b), device, repeats)
        rows.append(ProbeRow("matmul", name, "-", 2 * n**3 / seconds / 1e9))
    batch, ch, side = conv
    flops = 2 * batch * ch * ch * 9 * side * side
    x0, w0 = torch.randn(batch, ch, side, side, generator=g), torch.randn(ch, ch, 3, 3, generator=g)
    for name, dtype in dtypes.items():
        for layout, fmt in (("nchw", torch.contiguous_format), ("channels_last", torch.channels_last)):
            say(f"conv3x3 {name} {layout}")
            x = x0.to(device, dtype).contiguous(memory_format=fmt)
            w = w0.to(device, dtype).contiguous(memory_format=fmt)
            seconds = _best_seconds(partial(F.conv2d, x, w, padding=1), device, repeats)
            rows.append(ProbeRow("conv3x3", name, layout, flops / seconds / 1e9))
    return rows
