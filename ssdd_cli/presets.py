"""Presets as data: per source, one frozen record per component (teacher, distillation,
pretraining, budgets). Every option a user leaves unset (None) takes the preset's value.

CIFAR-100, TinyImageNet and ImageNet (64 px) values come from the SSDD paper (Appendix A.1, Table 5):
U = V = 2N while that fits the image/representation dimensions, image bases at half (32 px) or
quarter (64 px) resolution, rotation with A = 3, approximation hidden width 4 (32 px) or 16
(64 px), AdamW lr 1e-3 with linear decay, 30,000 (CIFAR) / 20,000 (64 px) outer steps, pool of
10 ConvNets trained up to Z = 1,000 full-batch steps. `digits` and `shapes` are the embedded
sources; their values are chosen so that `make demo` runs in a few minutes on 2 CPU cores.
`imagenette` (128 px) and `imagenet-1k` (224 px) are the paper's Appendix A.6 settings, chosen
with `--preset` for an `imagefolder:PATH` source.

A data source names its preset (`Source.preset`); this module knows nothing of sources.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from ssdd_cli.registry import Registry


@dataclass(frozen=True)
class TeacherPreset:
    """The Barlow Twins teacher: backbone, schedule and optimiser (see `teacher.trainer`).

    The defaults are solo-learn's CIFAR Barlow Twins recipe (scripts/pretrain/cifar/barlow.yaml),
    with which the SSDD paper trains its teacher: ResNet-18 with solo-learn's CIFAR stem, LARS at
    lr 0.3 for a batch of 256 (scaled linearly with the batch), eta 0.02, clip_lr, biases and
    norms excluded, weight decay 1e-4, momentum 0.9, the loss scaled by 0.1, 10 warm-up epochs
    from 3e-5 then cosine, 1,000 epochs, a 2048-2048-2048 projector with biases, and solo-learn's
    CIFAR augmentation (no blur).
    """

    arch: str = "resnet18"
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    # d_y, the width of that backbone's features (ResNets: 8·width). Declared, so that the budget
    # arithmetic (`ssdd budget`) knows it without building the network; tests/test_presets.py
    # checks it against the built backbone.
    feature_dim: int = 512
    epochs: int = 1000
    batch_size: int = 256
    optimizer: str = "lars"
    lr: float = 0.3
    lr_batch: int | None = 256  # lr is for this batch size, scaled linearly (None: as given)
    momentum: float = 0.9
    weight_decay: float = 1e-4
    lars_eta: float = 0.02
    lars_clip: bool = True
    scale_loss: float = 0.1
    warmup_epochs: int | None = 10  # None: min(10, max(1, epochs // 10))
    warmup_start_lr: float | None = 3e-5  # None: the warm-up starts at lr / warm-up steps
    projector_hidden: int = 2048
    projector_out: int = 2048
    projector_bias: bool = True
    augment: str = "solo-learn-cifar"  # a recipe of `teacher.augment.AUGMENT_RECIPES`


@dataclass(frozen=True)
class DistillPreset:
    """The outer loop, the model pool and the parameterisation of the SSDD/KRR-ST distillation."""

    steps: int = 30_000  # outer steps
    lr: float = 1e-3
    real_batch: int = 1024  # real images per outer step (KRR-ST's code)
    pool_size: int = 10  # L
    pool_max_steps: int = 1000  # Z
    inner_arch: str = "convnet"
    inner_kwargs: dict[str, Any] = field(default_factory=dict)
    scale: int = 2  # image bases live at resolution / scale
    hidden: int = 4  # width of the approximation networks Q_a
    real_aug: str = "crop-flip"  # the real side: KRR-ST's code (see distill/real.py)


@dataclass(frozen=True)
class MethodPreset:
    """A method's own outer schedule, where it differs from `DistillPreset`'s (None: the
    DistillPreset's value). KRR-ST's paper: 160,000 outer steps at lr 1e-3 (CIFAR-100) or 1e-5
    (TinyImageNet, ImageNet), where SSDD runs 30,000 / 20,000 at 1e-3."""

    steps: int | None = None
    lr: float | None = None


@dataclass(frozen=True)
class MatchingPreset:
    """The DM family (dm, datadam, iid, dsdm, idm) on this source; unset values are the papers'.

    steps: outer iterations by method name (the papers: dm, iid and idm 20,000, datadam 8,000,
        dsdm 10,000). real_batch: real images per class and step (the papers: 256).
    pool_size, pool_epochs: the pretrained pools (DSDM's ConvNets: 10 × 20 epochs; IID's
        ResNet-18s: 10 × 30), epochs by method name. aux_kwargs: IID's ResNet-18's options.
    queue_steps, queue_batch: IDM's training of two queue networks per step (10 SGD steps on
        256 real images each).
    """

    steps: dict[str, int] = field(default_factory=dict)
    real_batch: int | None = None
    pool_size: int | None = None
    pool_epochs: dict[str, int] = field(default_factory=dict)
    aux_kwargs: dict[str, Any] = field(default_factory=dict)
    queue_steps: int | None = None
    queue_batch: int | None = None


@dataclass(frozen=True)
class PretrainPreset:
    """Pretraining a fresh backbone on an artifact (SSDD A.1: SGD lr 0.1, 1,000 epochs).

    full_steps: the SGD steps of the "full" reference row of `ssdd compare` and the demo (every
    training image with its teacher target, the same recipe otherwise): as many as an artifact's
    pretraining takes, `epochs` epochs of one minibatch (a distilled set of at most 256 images),
    so the row differs from the distilled sets in its data, not its training length. The row runs
    the fewest whole epochs over the source that reach them (`train.full.full_config`): on
    CIFAR's 50,000 images 6 epochs of 196 minibatches (1,176 steps), on Fashion-MNIST's 60,000
    5 of 235 (1,175), on digits' 1,438 167 of 6 (1,002).
    """

    epochs: int = 1000
    full_steps: int = 1000


@dataclass(frozen=True)
class BudgetRow:
    """One row of the paper's Table 5: budget N (images), bases U and V, pretrain weight decay."""

    N: int
    U: int
    V: int
    weight_decay: float


@dataclass(frozen=True)
class BudgetRule:
    """The Table-5 rows of a source and the paper's rule for any other N.

    `row(N, base_dim, d_y)` is the row for N, or U = V = 2N; U is capped at the image bases'
    dimension and V at the teacher's (the paper's "unless this exceeds the dimension").
    """

    rows: tuple[BudgetRow, ...] = ()
    default: int = 100  # N when none is given

    def row(self, N: int, base_dim: int, d_y: int) -> BudgetRow:
        found = next((r for r in self.rows if r.N == N), None)
        wd = self.rows[0].weight_decay if self.rows else 1e-3
        row = found or BudgetRow(N, 2 * N, 2 * N, wd)
        return BudgetRow(N, min(row.U, base_dim), min(row.V, d_y), row.weight_decay)

    def weight_decay(self, N: int) -> float:
        """Pretraining weight decay of budget N (the first row's for a budget off the table)."""
        return self.row(N, 1, 1).weight_decay


@dataclass(frozen=True)
class Preset:
    name: str
    resolution: int
    channels: int
    teacher: TeacherPreset = field(default_factory=TeacherPreset)
    distill: DistillPreset = field(default_factory=DistillPreset)
    pretrain: PretrainPreset = field(default_factory=PretrainPreset)
    budgets: BudgetRule = field(default_factory=BudgetRule)
    methods: dict[str, MethodPreset] = field(default_factory=dict)  # by method name
    matching: MatchingPreset = field(default_factory=MatchingPreset)
    classes: int | None = None  # the source's classes (the DM family distills per class)

    def method(self, name: str) -> MethodPreset:
        """Method `name`'s own record (empty when it follows `distill`)."""
        return self.methods.get(name, MethodPreset())

    @property
    def base_dim(self) -> int:
        """c·(h/s)·(w/s): the dimension of an image basis."""
        return self.channels * (self.resolution // self.distill.scale) ** 2


PRESETS: Registry[Preset] = Registry("preset")

_CIFAR_BUDGETS = BudgetRule(rows=(
    BudgetRow(25, 50, 50, 1e-3),
    BudgetRow(50, 100, 100, 1e-3),
    BudgetRow(100, 200, 200, 1e-3),
    BudgetRow(1000, 500, 500, 1e-4),
    BudgetRow(5000, 700, 500, 1e-4),
))


def _paper(name: str, resolution: int, scale: int, hidden: int, steps: int, budgets: BudgetRule,
           krr_st_lr: float, classes: int) -> Preset:
    """A paper preset: ResNet18 Barlow Twins teacher, 3-channel images, Table-5 budgets, and
    KRR-ST's own outer schedule (its paper: 160,000 steps at `krr_st_lr`)."""
    return PRESETS.add(name, Preset(name, resolution, 3, TeacherPreset(),
                                    DistillPreset(steps=steps, scale=scale, hidden=hidden),
                                    PretrainPreset(), budgets,
                                    methods={"krr-st": MethodPreset(steps=160_000, lr=krr_st_lr)},
                                    classes=classes))


# KRR-ST's outer lr for CIFAR-100 is its paper's 1e-3; its README's command uses 1e-4 (`--lr 1e-4`).
# CIFAR-10 is only a target in KRR-ST; its source preset takes CIFAR-100's values.
_paper("cifar100", 32, 2, 4, 30_000, _CIFAR_BUDGETS, 1e-3, 100)
_paper("cifar10", 32, 2, 4, 30_000, _CIFAR_BUDGETS, 1e-3, 10)
_paper("tinyimagenet", 64, 4, 16, 20_000, BudgetRule(rows=(
    BudgetRow(50, 100, 100, 5e-3), BudgetRow(100, 200, 200, 5e-3), BudgetRow(200, 400, 400, 5e-3)),
    default=200), 1e-5, 200)
_paper("imagenet", 64, 4, 16, 20_000, BudgetRule(rows=(BudgetRow(250, 500, 500, 5e-3),), default=250), 1e-5,
       1000)

# The SSDD paper's larger settings (Appendix A.6): ImageNette at 128 px with a 5-block ConvNet and
# ImageNet-1K at 224 px with a 6-block one (`models.convnet.default_depth`), budgets N = 10 and
# 100. The paper gives nothing else for them; our choices (docs/design-choices.md):
# - image bases of 3x16x16, as in every other row of the paper (scale 8 at 128 px, 14 at 224 px);
#   Q_a hidden width 16 and 20,000 outer steps, as at 64 px; pretraining weight decay 5e-3;
# - ImageNet-1K: U = V = 2N = 200, the paper's rule (m = 36,942). ImageNette: 2N = 20 bases would
#   buy m = 11,597 images, more than its 9,469 training images; U = V = 320 give the bases the
#   share of the floats they have in the paper's CIFAR-100 N = 100 row (5/6), m = 78;
# - the teacher: solo-learn's ImageNet-100 Barlow Twins recipe (ResNet-18 with torchvision's
#   ImageNet stem, LARS as on CIFAR, 400 epochs, the Barlow Twins paper's views with blur);
# - KRR-ST: 160,000 steps at its ImageNet rate 1e-5.
_IMAGENET_TEACHER = TeacherPreset(arch_kwargs={"stem": "imagenet"}, epochs=400, augment="barlow-twins")
for _name, _res, _scale, _row, _classes in (("imagenette", 128, 8, BudgetRow(10, 320, 320, 5e-3), 10),
                                            ("imagenet-1k", 224, 14, BudgetRow(100, 200, 200, 5e-3), 1000)):
    PRESETS.add(_name, Preset(_name, _res, 3, _IMAGENET_TEACHER,
                              DistillPreset(steps=20_000, scale=_scale, hidden=16), PretrainPreset(),
                              BudgetRule(rows=(_row,), default=_row.N),
                              methods={"krr-st": MethodPreset(steps=160_000, lr=1e-5)}, classes=_classes))

# Embedded sources: small teacher, short schedules (the demo's budget is a few minutes).
# Teachers: ResNet-10 width 16 (128-d features), 512-wide projector, AdamW; digits (50 epochs)
# takes under a minute on 2 idle CPU cores. ssdd_cli/teacher/config.py explains the optimiser.
# They keep the recipe they were measured with: the "cifar-same" stem (padding 1), AdamW without
# LARS scaling, unscaled loss, warm-up from lr / steps over a tenth of the epochs, a bias-free
# projector and the Barlow Twins paper's augmentation.
_SMALL_TEACHER = TeacherPreset(arch="resnet10", arch_kwargs={"width": 16, "stem": "cifar-same"},
                               feature_dim=128, batch_size=128, optimizer="adamw", lr=2e-3, lr_batch=None,
                               weight_decay=1e-4, scale_loss=1.0, warmup_epochs=None,
                               warmup_start_lr=None, projector_hidden=512, projector_out=512,
                               projector_bias=False, augment="barlow-twins")
# The DM family on the embedded sources (2 shared CPU cores, a few minutes a run): the papers'
# ConvNet (width 128) and losses, with far fewer iterations, smaller real batches on shapes (a
# digits class has ~130 images, fewer than the papers' 256), briefer pools and queue training.
_DIGITS_MATCHING = MatchingPreset(steps={"dm": 150, "datadam": 150, "iid": 120, "dsdm": 100, "idm": 100},
                                  pool_size=4, pool_epochs={"dsdm": 5, "iid": 5}, aux_kwargs={"width": 16},
                                  queue_steps=2, queue_batch=128)
_SHAPES_MATCHING = MatchingPreset(steps={"dm": 80, "datadam": 80, "iid": 50, "dsdm": 30, "idm": 50},
                                  real_batch=64, pool_size=2, pool_epochs={"dsdm": 1, "iid": 1},
                                  aux_kwargs={"width": 16}, queue_steps=2, queue_batch=64)

# Digits at 16 px with a 128-d teacher: `digits` and the benchmark `digits-nuisance` share these.
# Pretraining runs the paper's 1,000 epochs: a distilled set of at most 256 images is one minibatch,
# so an epoch is one SGD step, and 100 (this preset's value until measured) left every backbone at
# its random initialisation's probes (docs/results.md, "Pretraining steps").
_DIGITS_PRETRAIN = PretrainPreset(epochs=1000)
_DIGITS_DISTILL = DistillPreset(steps=300, real_batch=512, pool_size=4, pool_max_steps=100,
                                inner_kwargs={"widths": (64, 128)}, scale=2, hidden=4, real_aug="none")
# U = V = 2N would exceed what N images' worth of floats can hold with a 128-d teacher
# (B^y alone is 128·V); these fit, with m = 49, 50, 90 and 157. (At N = 100 the rule's U = V = 2N,
# capped at the dimensions 64 and 128, would leave room for m = 8.) Pretraining's weight decay is
# 3e-3, not Table 5's 1e-3: chosen on the validation split at N = 20 over 3 seeds (docs/results.md,
# "Validation screens": 5-shot +2.1 and `align` +3.5 over the regression sets, k-NN even, the
# full linear probe −1.7); the other budgets take it untested, with the same 1,000 SGD steps.
_DIGITS_WD = 3e-3
_DIGITS_BUDGETS = BudgetRule(rows=(BudgetRow(10, 8, 8, _DIGITS_WD), BudgetRow(20, 16, 16, _DIGITS_WD),
                                   BudgetRow(50, 32, 32, _DIGITS_WD), BudgetRow(100, 48, 48, _DIGITS_WD)),
                             default=20)

PRESETS.add("digits", Preset(
    "digits", 16, 1,
    replace(_SMALL_TEACHER, epochs=50),
    _DIGITS_DISTILL,
    _DIGITS_PRETRAIN,
    _DIGITS_BUDGETS,
    matching=_DIGITS_MATCHING,
    classes=10,
))
# The benchmark (docs/results.md): digits drawn at random size and position. Its teacher is a
# ConvNet 64-128 with global average pooling (128-d, as the digits teacher), 60 epochs with wide
# crops (3.7 minutes on 2 idle CPU cores in float32 restricted to AVX2, 2.1 under bf16); the
# ResNet-10 teachers of the other embedded sources learned this source's invariance markedly
# worse in the calibration runs. Distillation, pretraining and budgets are the digits rows (same
# shape and feature dim).
PRESETS.add("digits-nuisance", Preset(
    "digits-nuisance", 16, 1,
    replace(_SMALL_TEACHER, arch="convnet", arch_kwargs={"widths": (64, 128), "pool": "avg"},
            epochs=60, augment="barlow-twins-crop30"),
    _DIGITS_DISTILL,
    _DIGITS_PRETRAIN,
    _DIGITS_BUDGETS,
    matching=_DIGITS_MATCHING,
    classes=10,
))
PRESETS.add("shapes", Preset(
    "shapes", 32, 3,
    replace(_SMALL_TEACHER, epochs=10, batch_size=256),
    DistillPreset(steps=500, real_batch=512, pool_size=4, pool_max_steps=200,
                  inner_kwargs={"widths": (64, 128, 256)}, scale=2, hidden=4, real_aug="none"),
    PretrainPreset(epochs=100, full_steps=100),
    BudgetRule(rows=(BudgetRow(50, 100, 100, 1e-3), BudgetRow(100, 200, 200, 1e-3)), default=50),
    matching=_SHAPES_MATCHING,
    classes=10,
))

# Fashion-MNIST and MNIST (official IDX files, 28 px, 1 channel; docs/design-choices.md). 28 px is
# what the DC/DSA ConvNet-3 takes (28 -> 14 -> 7 -> 3), so no padding. The teacher is the
# benchmark's kind (a ConvNet with global average pooling, 128-d) at depth 3, trained alone on 2
# cores within about 20 minutes under --precision auto. Distillation: image bases at 14 px, a pool
# of ConvNets 64-128-256 (KRR-ST's doubling at a quarter of its width, so an outer step stays
# under a second on 2 cores), KRR-ST's crop-flip real side. Budgets: the paper's rule, U = V = 2N
# capped at the bases' 196 and the teacher's 128 dimensions (m = 20, 62 and 1,030 at N = 10, 100
# and 500, Q_a's floats included), weight decay 1e-3 (Table 5's value up to N = 100; it uses 1e-4
# from N = 1,000).
# The DM family keeps the papers' networks, losses and real batch of 256 per class, with a few
# dozen iterations (a DM step over 10 classes took 3.4 s on 2 cores in float32; the papers run
# 20,000), so on this preset its sets stay close to their real initialisation.
# The "full" row runs 5 epochs: 5 × 235 minibatches of the 60,000 images of the source side
# (train and val), about the distilled sets' 1,000 steps (see PretrainPreset).
_MNIST_TEACHER = replace(_SMALL_TEACHER, arch="convnet", arch_kwargs={"widths": (32, 64, 128), "pool": "avg"},
                         epochs=25, batch_size=256, augment="barlow-twins-crop30")
for _name in ("fashion-mnist", "mnist"):
    PRESETS.add(_name, Preset(
        _name, 28, 1, _MNIST_TEACHER,
        DistillPreset(steps=500, real_batch=512, pool_size=4, pool_max_steps=100,
                      inner_kwargs={"widths": (64, 128, 256)}, scale=2, hidden=4),
        PretrainPreset(epochs=1000),
        BudgetRule(rows=tuple(BudgetRow(n, 2 * n, 2 * n, 1e-3) for n in (10, 100, 500)), default=100),
        matching=MatchingPreset(steps={"dm": 100, "datadam": 60, "iid": 60, "dsdm": 40, "idm": 40},
                                pool_size=4, pool_epochs={"dsdm": 1, "iid": 1}, aux_kwargs={"width": 16},
                                queue_steps=2, queue_batch=256),
        classes=10,
    ))


def get_preset(name: str) -> Preset:
    """The preset called `name` (a `UsageError` listing the presets otherwise)."""
    return PRESETS.get(name)
