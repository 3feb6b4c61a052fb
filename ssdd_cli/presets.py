"""Presets as data: per source, the resolution, teacher, inner network, bases and schedules.

CIFAR-100, TinyImageNet and ImageNet values come from the SSDD paper (Appendix A.1, Table 5):
U = V = 2N while that fits the image/representation dimensions, image bases at half (32 px) or
quarter (64 px) resolution, rotation with A = 3, approximation hidden width 4 (32 px) or 16
(64 px), AdamW lr 1e-3 with linear decay, 30,000 (CIFAR) / 20,000 (64 px) outer steps, pool of
10 ConvNets trained up to Z = 1,000 full-batch steps. `digits` and `shapes` are the embedded
sources; their values are chosen so that `make demo` runs in a few minutes on 2 CPU cores.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ssdd_cli.errors import UsageError


@dataclass(frozen=True)
class BudgetPreset:
    """One row of the paper's Table 5: budget N (images), bases U and V, pretrain weight decay."""

    N: int
    U: int
    V: int
    weight_decay: float


@dataclass(frozen=True)
class Preset:
    source: str
    resolution: int
    channels: int
    scale: int  # image bases live at resolution / scale
    teacher_arch: str
    teacher_epochs: int
    teacher_batch_size: int
    teacher_lr: float
    teacher_kwargs: dict[str, object] = field(default_factory=dict)
    inner_arch: str = "convnet"
    inner_kwargs: dict[str, object] = field(default_factory=dict)
    hidden: int = 4  # approximation network hidden width
    steps: int = 30_000  # outer distillation steps
    real_batch: int = 1024  # real images per outer step (KRR-ST's code)
    pool_size: int = 10
    pool_max_steps: int = 1000  # Z
    distill_lr: float = 1e-3
    pretrain_epochs: int = 1000
    budgets: tuple[BudgetPreset, ...] = ()
    default_budget: int = 100

    def budget(self, n: int) -> BudgetPreset:
        """The Table-5 row for budget N, or U = V = 2N capped by the dimensions (the paper's rule)."""
        for row in self.budgets:
            if row.N == n:
                return row
        base_dim = self.channels * (self.resolution // self.scale) ** 2
        u = min(2 * n, base_dim)
        wd = self.budgets[0].weight_decay if self.budgets else 1e-3
        return BudgetPreset(n, u, 2 * n, wd)


_CIFAR_BUDGETS = (
    BudgetPreset(25, 50, 50, 1e-3),
    BudgetPreset(50, 100, 100, 1e-3),
    BudgetPreset(100, 200, 200, 1e-3),
    BudgetPreset(1000, 500, 500, 1e-4),
    BudgetPreset(5000, 700, 500, 1e-4),
)



def _paper(source: str, resolution: int, scale: int, hidden: int, steps: int,
           budgets: tuple[BudgetPreset, ...], default_budget: int = 100) -> Preset:
    """A paper preset: ResNet18 Barlow Twins teacher, 3-channel images, Table-5 budgets."""
    return Preset(source, resolution, 3, scale, teacher_arch="resnet18", teacher_epochs=800,
                  teacher_batch_size=256, teacher_lr=0.3, hidden=hidden, steps=steps,
                  budgets=budgets, default_budget=default_budget)


PRESETS: dict[str, Preset] = {
    "cifar100": _paper("cifar100", 32, 2, 4, 30_000, _CIFAR_BUDGETS),
    "cifar10": _paper("cifar10", 32, 2, 4, 30_000, _CIFAR_BUDGETS),
    "tinyimagenet": _paper("tinyimagenet", 64, 4, 16, 20_000,
                           (BudgetPreset(50, 100, 100, 5e-3), BudgetPreset(100, 200, 200, 5e-3),
                            BudgetPreset(200, 400, 400, 5e-3)), default_budget=200),
    "imagenet": _paper("imagenet", 64, 4, 16, 20_000, (BudgetPreset(250, 500, 500, 5e-3),),
                       default_budget=250),
    # Embedded sources: small teacher, short schedules (the demo's budget is a few minutes).
    # Teachers: ResNet-10 width 16 (128-d features), 512-wide projector, AdamW; digits (50
    # epochs) takes under a minute on 2 idle CPU cores. TeacherConfig.from_preset reads the
    # non-backbone teacher_kwargs keys; ssdd_cli/teacher/trainer.py explains the optimiser.
    "digits": Preset("digits", 16, 1, 2, teacher_arch="resnet10", teacher_epochs=50,
                     teacher_batch_size=128, teacher_lr=2e-3,
                     teacher_kwargs={"width": 16, "optimizer": "adamw", "weight_decay": 1e-4,
                                     "projector_hidden": 512, "projector_out": 512},
                     inner_kwargs={"widths": (64, 128)}, hidden=4, steps=300, real_batch=512,
                     pool_size=4, pool_max_steps=100, pretrain_epochs=100,
                     # U = V = 2N would exceed what N images' worth of floats can hold with a
                     # 128-d teacher (B^y alone is 128·V); these fit, with m = 49, 50 and 90.
                     budgets=(BudgetPreset(10, 8, 8, 1e-3), BudgetPreset(20, 16, 16, 1e-3),
                              BudgetPreset(50, 32, 32, 1e-3)),
                     default_budget=20),
    "shapes": Preset("shapes", 32, 3, 2, teacher_arch="resnet10", teacher_epochs=10,
                     teacher_batch_size=256, teacher_lr=2e-3,
                     teacher_kwargs={"width": 16, "optimizer": "adamw", "weight_decay": 1e-4,
                                     "projector_hidden": 512, "projector_out": 512},
                     inner_kwargs={"widths": (64, 128, 256)}, hidden=4, steps=500, real_batch=512,
                     pool_size=4, pool_max_steps=200, pretrain_epochs=100,
                     budgets=(BudgetPreset(50, 100, 100, 1e-3), BudgetPreset(100, 200, 200, 1e-3)),
                     default_budget=50),
}


def get_preset(source: str) -> Preset:
    """The preset for a source name; `imagefolder:`/`npz:` sources use the 64 px / 32 px defaults."""
    key = source.split(":", 1)[0]
    if key in PRESETS:
        return PRESETS[key]
    if key == "imagefolder":
        return PRESETS["tinyimagenet"]
    if key == "npz":
        return PRESETS["cifar100"]
    from ssdd_cli.data import list_sources  # deferred: data imports presets

    known = ", ".join(f"{n}:PATH" if n in ("imagefolder", "npz") else n for n in list_sources())
    raise UsageError(f"unknown source {source!r}; use one of {known} (see `ssdd datasets`).")
