"""The records a preset is made of (teacher, distillation, methods, matching, pretraining,
budgets), the `Preset` that holds one of each, and the registry every family adds to."""

from __future__ import annotations

from dataclasses import dataclass, field
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
    so the row differs from the distilled sets in its data, not its training length (a larger
    set, e.g. Fashion-MNIST's m = 1,030 × 4 views at N = 500, takes several minibatches an epoch,
    so its pretraining is longer than the row: set `full_steps` in a comparison to match). The row runs
    the fewest whole epochs over the source that reach them (`train.full.full_config`): on
    CIFAR's 45,000 training images 6 epochs of 176 minibatches (1,056 steps), on Fashion-MNIST's
    54,000 5 of 211 (1,055), on digits' 1,294 167 of 6 (1,002).
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


def get_preset(name: str) -> Preset:
    """The preset called `name` (a `UsageError` listing the presets otherwise)."""
    return PRESETS.get(name)
