"""How far the distilled set has moved from where it started: ‖Δ‖ / ‖initial‖ per tensor.

An outer loop that lowers its loss while its set barely moves has found a nearby set the
objective likes, not a new one: with AdamW an entry moves at most about lr·steps/2 under a linear
decay, so the figure says whether a schedule can reach the papers' displacement at all.

Per learnable tensor of the set (`x`, `y` for a raw set; `image_bases`, `image_coeffs`,
`repr_bases`, `repr_coeffs`, `aug_coeffs` for SSDD's) and, comparable across methods, the
images the inner model trains on (`images`: the support's first m rows, before any view).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from ssdd_cli.distill.param import DistilledModule, ParameterizedSet

IMAGES = "images"


def relative_movement(now: Mapping[str, Tensor], start: Mapping[str, Tensor]) -> dict[str, float]:
    """‖now[k] − start[k]‖_F / ‖start[k]‖_F for every key of `start` (each any shape, same as its
    `now`); a tensor that started at exactly 0 reports its absolute ‖now[k]‖_F instead."""
    moved = {}
    for key, first in start.items():
        delta = float(torch.linalg.vector_norm((now[key] - first).double()))
        scale = float(torch.linalg.vector_norm(first.double()))
        moved[key] = delta / scale if scale > 0 else delta
    return moved


def snapshot(distilled: DistilledModule) -> dict[str, Tensor]:
    """Detached copies of the set's learnable tensors and of its images (`IMAGES`), on the CPU."""
    with torch.no_grad():
        state = {name: p.detach().float().cpu().clone() for name, p in distilled.named_parameters()}
        images = distilled.images() if isinstance(distilled, ParameterizedSet) else distilled.support()[0]
        state[IMAGES] = images.detach().float().cpu().clone()
    return state


def movement(distilled: DistilledModule, start: Mapping[str, Tensor]) -> dict[str, float]:
    """`relative_movement` of the set now against its `snapshot` `start`."""
    return relative_movement(snapshot(distilled), start)
