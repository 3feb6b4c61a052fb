"""One rule for the BatchNorm statistics of every backbone an evaluation probes.

A frozen backbone's eval-mode features depend on its BatchNorm running statistics as much as on
its weights. A pretrained backbone carries the statistics of its pretraining images; a random
initialisation carries fresh buffers (mean 0, variance 1: eval-mode BatchNorm is then the
identity). Probing the two as they are compares statistics, not learned features: giving random
weights the statistics of 20 images lowered `align` by 2.7–4.1 points (docs/results.md). So,
by default, every backbone is probed with statistics recomputed on the target's training images
("target"), and so is the teacher `align` compares with: the weights are what is compared.
"stored" probes the statistics a file carries.

The minibatches are drawn from a fixed-seed permutation of the images (as fvcore's
`update_bn_stats` draws from a shuffled loader): a set stored class by class (an `imagefolder`
target) would otherwise give nearly single-class batches, and the running variance would be the
within-class one. The fixed seed keeps a recalibration, and every probe after it, deterministic.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from ssdd_cli.models import Backbone

BATCHNORM_RULES = ("target", "stored")
DEFAULT_BATCHNORM = "target"
RECALIBRATION_SEED = 0  # the permutation the minibatches are drawn from
# The version of the statistics the "target" rule gives, for a cached evaluation's key: 1 took
# the minibatches in stored order, 2 from the permutation. Bump it when they change.
RECALIBRATION_VERSION = 2


def batchnorm_layers(net: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """The BatchNorm layers of `net` that keep running statistics, in module order."""
    return [m for m in net.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]


def has_batchnorm(net: nn.Module) -> bool:
    return bool(batchnorm_layers(net))


@torch.no_grad()
def recompute_batchnorm(net: Backbone, images_normalised: Tensor, *, batch_size: int = 256,
                        device: torch.device | str = "cpu", seed: int = RECALIBRATION_SEED) -> Backbone:
    """A copy of `net` whose BatchNorm running statistics are the average, over minibatches of
    `images_normalised` (n, c, r, r) taken in the order of a permutation drawn from `seed`
    (module docstring), of each layer's batch statistics in train mode ("precise BN": momentum
    None makes the buffers a cumulative average). The weights are untouched, and so is `net`; a
    network without BatchNorm comes back as an unchanged copy. A last minibatch of one image is
    left out (BatchNorm needs two)."""
    out = copy.deepcopy(net)
    layers = batchnorm_layers(out)
    if not layers or images_normalised.shape[0] < 2:
        return out.eval()
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None
    out.train()
    n = images_normalised.shape[0]
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    for i in range(0, n, batch_size):
        batch = images_normalised[order[i:i + batch_size].to(images_normalised.device)]
        if batch.shape[0] < 2:
            break
        out.features(batch.to(device, torch.float32))
    for layer, original in zip(layers, batchnorm_layers(net), strict=True):
        layer.momentum = original.momentum
    return out.eval()
