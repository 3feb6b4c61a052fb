"""Fashion-MNIST and MNIST, read from their official IDX files (28 px, 1 channel)."""

from __future__ import annotations

from dataclasses import replace

from ssdd_cli.presets.embedded import SMALL_TEACHER
from ssdd_cli.presets.records import (
    PRESETS,
    BudgetRow,
    BudgetRule,
    DistillPreset,
    MatchingPreset,
    MethodPreset,
    Preset,
    PretrainPreset,
)

# Fashion-MNIST and MNIST (official IDX files, 28 px, 1 channel; docs/design-choices.md). 28 px is
# what the DC/DSA ConvNet-3 takes (28 -> 14 -> 7 -> 3), so no padding. The teacher is the
# benchmark's kind (a ConvNet with global average pooling, 128-d) at depth 3, trained alone on 2
# cores within about 20 minutes under --precision auto. Distillation: image bases at 14 px, a pool
# of ConvNets 64-128-256 (KRR-ST's doubling at a quarter of its width, so an outer step stays
# under a second on 2 cores), KRR-ST's crop-flip real side. Budgets: the paper's rule, U = V = 2N
# capped at the bases' 196 and the teacher's 128 dimensions (m = 62 and 1,030 at N = 100 and 500,
# Q_a's floats included), weight decay 1e-3 (Table 5's value up to N = 100; it uses 1e-4 from
# N = 1,000). Fashion-MNIST at N = 10 takes bases of rank 10 instead (U = V = 10: m = 215 images
# where the rule's 20 leave m = 20), chosen on held-out validation images over 3 seeds (issue 33,
# docs/results.md: 5-shot +3.3 and k-NN +2.6 over 10 random real images, above random
# initialisation on every probe, at its initialisation as after its steps). Its 215 images × 4
# views are 4 minibatches an epoch, so its 1,000 pretraining epochs are 4,000 SGD steps; 10 random
# real images pretrained for as many steps did worse than for 1,000, so the lead is not the length.
# At N = 100 rank 100 (m = 216) was screened the same way and kept the rule: above random real
# images on k-NN but not, by its interval, on 5-shot (docs/results.md, "rank 100 on 3 seeds").
# The DM family keeps the papers' networks, losses and real batch of 256 per class, with a few
# dozen iterations (a DM step over 10 classes took 3.4 s on 2 cores in float32; the papers run
# 20,000), so on this preset its sets stay close to their real initialisation.
# SSDD on Fashion-MNIST: lr 1e-2 over 2,000 outer steps (Σlr 10, near the paper's 30,000 × 1e-3
# = 15), chosen on held-out validation images (issue 33, docs/results.md: the one setting whose
# trained-network signal rose along the steps on 3 seeds, and whose set beat 10 random real images
# on 5-shot and k-NN). KRR-ST keeps lr 1e-3 over 500 steps (lr 1e-1 did not beat random on 3
# seeds). MNIST, not screened, keeps 500 steps at 1e-3 for both. The schedule was chosen at rank
# 20; at rank 10 (N = 10) its 2,000 steps are above the initialisation in the mean on 3 seeds
# (5-shot +0.55, k-NN +0.28, intervals spanning 0; CKA to the teacher +10.5, shown), the rule's
# bar for keeping it (docs/results.md, "rank 10's schedule on 3 seeds").
# The "full" row runs 5 epochs: 5 × 211 minibatches of the 54,000 images of the source side
# (train; val held out), about the distilled sets' 1,000 steps (see PretrainPreset).
_RULE_ROWS = tuple(BudgetRow(n, 2 * n, 2 * n, 1e-3) for n in (10, 100, 500))
_FASHION_ROWS = (BudgetRow(10, 10, 10, 1e-3), *_RULE_ROWS[1:])
_MNIST_TEACHER = replace(SMALL_TEACHER, arch="convnet", arch_kwargs={"widths": (32, 64, 128), "pool": "avg"},
                         epochs=25, batch_size=256, augment="barlow-twins-crop30")
for _name in ("fashion-mnist", "mnist"):
    PRESETS.add(_name, Preset(
        _name, 28, 1, _MNIST_TEACHER,
        DistillPreset(steps=500, real_batch=512, pool_size=4, pool_max_steps=100,
                      inner_kwargs={"widths": (64, 128, 256)}, scale=2, hidden=4),
        PretrainPreset(epochs=1000),
        BudgetRule(rows=_FASHION_ROWS if _name == "fashion-mnist" else _RULE_ROWS, default=100),
        matching=MatchingPreset(steps={"dm": 100, "datadam": 60, "iid": 60, "dsdm": 40, "idm": 40},
                                pool_size=4, pool_epochs={"dsdm": 1, "iid": 1}, aux_kwargs={"width": 16},
                                queue_steps=2, queue_batch=256),
        methods={"ssdd": MethodPreset(steps=2000, lr=1e-2)} if _name == "fashion-mnist" else {},
        classes=10,
    ))
