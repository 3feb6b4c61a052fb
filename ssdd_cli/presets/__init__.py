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

from ssdd_cli.presets import embedded, idx, paper  # noqa: F401  (each registers its family's presets)
from ssdd_cli.presets.records import (
    PRESETS,
    BudgetRow,
    BudgetRule,
    DistillPreset,
    MatchingPreset,
    MethodPreset,
    Preset,
    PretrainPreset,
    TeacherPreset,
    get_preset,
)

__all__ = ["PRESETS", "BudgetRow", "BudgetRule", "DistillPreset", "MatchingPreset", "MethodPreset", "Preset",
           "PretrainPreset", "TeacherPreset", "get_preset"]
