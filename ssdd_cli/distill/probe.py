"""A held-out signal measured on a network trained on the current distilled set.

The objective's own held-out loss (`Objective.held_out_loss`) says how well the pool's networks
regress validation images through the set; it does not say whether a network *pretrained* on
the set learns useful features, which is what the probes measure after the run. Every K outer
steps (`OuterConfig.probe_every`; 0: never) this probe pretrains a fresh copy of the pool's
network on the set as it is (X̃_s, Ỹ_s, detached) for `OuterConfig.probe_steps` SGD steps (200
by default) with the pool's recipe, then measures it on the source's validation images only:

- `val-cka`: linear CKA between its features and the teacher's (label-free, as `align`);
- `val-knn`: k-NN accuracy (the `knn` protocol's k and temperature) of each half of the
  validation images against the other half as the labelled bank, averaged (labelled sources).

Both read BatchNorm statistics recomputed on the validation images (`train.batchnorm`), and so
does the teacher `val-cka` compares with (once per distillation), as `align` compares with the
teacher recalibrated on the target's images: the distillation targets come from the teacher's
stored statistics, the two CKAs from the recalibrated teacher (docs/design-choices.md, "Which
teacher each number compares with"). The test split is never read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ssdd_cli.distill.inputs import DistillInputs
from ssdd_cli.distill.param import DistilledModule
from ssdd_cli.distill.pool import PoolConfig
from ssdd_cli.models import extract_features
from ssdd_cli.train.batchnorm import recompute_batchnorm
from ssdd_cli.train.cka import linear_cka
from ssdd_cli.train.knn import knn_predict
from ssdd_cli.train.pretrain import pretrain
from ssdd_cli.train.recipe import PretrainConfig

PROBE_STEPS = 200  # the default SGD steps of the short pretraining (a fifth of the presets' 1,000)
PROBE_BATCH = 256
# What the signal measures, for stores that key runs by it: 2 since issue 32 (val-cka against the
# teacher recalibrated on the validation images, BatchNorm passes over shuffled minibatches).
PROBE_VERSION = 2


@dataclass
class TrainedProbe:
    """Pretrain-and-measure on validation images (module docstring); `__call__` gives the
    signals of the set as it is now, e.g. {"val-cka": 0.53, "val-knn": 0.71}."""

    pool: PoolConfig
    inputs: DistillInputs
    steps: int = PROBE_STEPS
    seed: int = 0
    _teacher_val: Tensor | None = None

    def __call__(self, distilled: DistilledModule) -> dict[str, float]:
        held_out = self.inputs.held_out
        assert held_out is not None and held_out.shape[0] >= 4
        x, y = (t.detach().float() for t in distilled.support())
        c, r = x.shape[1], x.shape[-1]
        per_epoch = math.ceil(x.shape[0] / PROBE_BATCH)
        config = PretrainConfig(arch=self.pool.arch, arch_kwargs=dict(self.pool.arch_kwargs),
                                epochs=max(1, self.steps // per_epoch), batch_size=PROBE_BATCH,
                                lr=self.pool.lr, momentum=self.pool.momentum,
                                weight_decay=self.pool.weight_decay, seed=self.seed)
        net, _ = pretrain(x, y.reshape(x.shape[0], -1), None, config, in_channels=c, image_size=r,
                          device=x.device, precision=self.inputs.precision)
        net = recompute_batchnorm(net, held_out, device=x.device)
        feats = extract_features(net, held_out, device=x.device)
        out = {"val-cka": linear_cka(feats.double(), self.teacher_val().double())}
        labels = self.inputs.held_out_labels
        if labels is not None:
            out["val-knn"] = split_half_knn(feats, labels.to(feats.device))
        return out

    def teacher_val(self) -> Tensor:
        """The teacher's raw features of the validation images, its BatchNorm statistics
        recomputed on them as the probed network's are (computed once). A teacher given only as
        a function (`TeacherTargets.network` None) is read as it is."""
        if self._teacher_val is None:
            teacher, held_out = self.inputs.require_teacher(), self.inputs.held_out
            assert held_out is not None
            if teacher.network is None:
                with torch.no_grad():
                    self._teacher_val = teacher.fn(held_out)
            else:
                net = recompute_batchnorm(teacher.network, held_out, device=held_out.device)
                self._teacher_val = extract_features(net, held_out, device=held_out.device)
        return self._teacher_val


def split_half_knn(features: Tensor, labels: Tensor) -> float:
    """k-NN accuracy of the odd rows against the even rows as the bank and back, averaged:
    features (n, d), labels (n,) of validation images only."""
    num_classes = int(labels.max()) + 1
    even, odd = torch.arange(0, len(labels), 2), torch.arange(1, len(labels), 2)
    scores = []
    for bank, query in ((even, odd), (odd, even)):
        predicted = knn_predict(features[bank], labels[bank], features[query], num_classes=num_classes)
        scores.append(float((predicted == labels[query]).float().mean()))
    return sum(scores) / len(scores)
