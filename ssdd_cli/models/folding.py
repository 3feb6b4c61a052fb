"""BatchNorm folded into the convolution before it, for a network used in eval mode.

In eval mode BatchNorm is the affine map y = γ·(x − μ)/√(σ² + ε) + β with fixed statistics, so
conv → BN is one convolution with weights W·γ/√(σ² + ε) and bias (b − μ)·γ/√(σ² + ε) + β: the
same function (to rounding) with one pass over the activations instead of two. The outer loop's
pool networks run in eval mode over a real batch of hundreds of images every step, where the
separate BatchNorm pass took about a fifth of the step on a CPU (docs/performance.md).
"""

from __future__ import annotations

import copy
from typing import TypeVar

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

M = TypeVar("M", bound=nn.Module)


def fold_batchnorm(network: M) -> M:
    """A copy of `network` (in eval mode) in which every Conv2d directly followed by a
    BatchNorm2d inside an `nn.Sequential` is one Conv2d, the BatchNorm an Identity. Networks
    without such pairs come back as an unchanged copy. The copy shares no tensor with `network`,
    so training `network` later does not change it (fold again after a step), and its parameters
    need no gradient (it serves forward passes, and gradients with respect to its inputs).

    Raises ValueError for a network in training mode: there BatchNorm uses the batch's own
    statistics, which no fixed convolution reproduces.
    """
    if network.training:
        raise ValueError("fold_batchnorm needs a network in eval mode")
    folded = copy.deepcopy(network)
    for sequential in [m for m in folded.modules() if isinstance(m, nn.Sequential)]:
        names = list(sequential._modules)
        for first, second in zip(names, names[1:], strict=False):
            conv, norm = sequential._modules[first], sequential._modules[second]
            if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d) and norm.track_running_stats:
                sequential._modules[first] = fuse_conv_bn_eval(conv, norm)
                sequential._modules[second] = nn.Identity()
    return folded.requires_grad_(False)
