"""`digits-nuisance`: scikit-learn's real handwritten digits drawn at a random size and position,
the embedded benchmark.

Each 8×8 digit is drawn several times into a 16×16 canvas, each time at a random side (35–80% of
the canvas) and a random position fully inside it, white on black, plus pixel noise. The class is
the digit, as in `digits`; only where and how large it is drawn varies.

Why it is a benchmark with headroom: a randomly initialised ConvNet's features are dominated by
where the stroke is and how large it is, so a linear probe on them, and above all a few-shot one,
reads the digit poorly; a Barlow Twins teacher trained with wide random crops (30–100% of the
area) sees two views of one digit at different positions and scales and learns what they share,
the stroke's shape, which is the class. Brightness and background nuisance were measured too and
left out: with them the small teacher's few-shot lead shrank (docs/results.md has the numbers).

Splits: the 359 test digits are those of `digits` (a fixed stratified 20%); 10% of the others are
validation digits. Every rendering of a digit stays in its digit's split, so no stroke of a test
or validation digit is ever seen in training. Deterministic in (seed, resolution, config).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ssdd_cli.data.digits import load_glyphs, split_sizes
from ssdd_cli.data.registry import Source, SourceRequest, SourceStatus, register_source, sizes_text
from ssdd_cli.data.splits import assemble, carve, val_count

if TYPE_CHECKING:
    import torch

    from ssdd_cli.data.imageset import ImageSet


@dataclass(frozen=True)
class NuisanceConfig:
    """The nuisance of the rendering; the defaults are the calibrated benchmark's.

    copies: renderings of each training and validation digit; test_copies: of each test digit.
    scale: the digit's side as a fraction of the canvas (uniform). background: range of the
    background's grey level; contrast: range of the stroke's brightness above it. noise: std of
    the per-pixel Gaussian noise. Values are clipped to [0, 1].
    """

    copies: int = 4
    test_copies: int = 2
    scale: tuple[float, float] = (0.35, 0.8)
    background: tuple[float, float] = (0.0, 0.0)
    contrast: tuple[float, float] = (1.0, 1.0)
    noise: float = 0.03


def render_digits(glyphs: np.ndarray, copies: int, resolution: int, rng: np.random.Generator,
                  config: NuisanceConfig) -> tuple[torch.Tensor, np.ndarray]:
    """`copies` renderings of each glyph (n, 8, 8) in [0, 1], in a shuffled order.

    Returns images (n·copies, 1, r, r) float32 in [0, 1] and the index (n·copies,) of the glyph
    each rendering shows.
    """
    import torch
    import torch.nn.functional as F

    which = rng.permutation(np.repeat(np.arange(len(glyphs)), copies))
    n, r = len(which), resolution
    lo, hi = (max(1, int(round(f * r))) for f in config.scale)
    sides = rng.integers(lo, hi + 1, size=n)
    background = rng.uniform(config.background[0], config.background[1], size=n).astype(np.float32)
    rise = rng.uniform(config.contrast[0], config.contrast[1], size=n).astype(np.float32)
    stroke = np.clip(background + rise, 0.0, 1.0)
    tops = (rng.random(n) * (r - sides + 1)).astype(np.int64)
    lefts = (rng.random(n) * (r - sides + 1)).astype(np.int64)
    alpha = np.zeros((n, r, r), dtype=np.float32)
    source = torch.from_numpy(glyphs[which]).unsqueeze(1)
    for side in np.unique(sides):
        sel = np.nonzero(sides == side)[0]
        scaled = F.interpolate(source[sel], size=(int(side), int(side)), mode="bilinear",
                               align_corners=False).clamp(0, 1)[:, 0].numpy()
        for k, i in enumerate(sel):
            alpha[i, tops[i]:tops[i] + side, lefts[i]:lefts[i] + side] = scaled[k]
    images = background[:, None, None] + (stroke - background)[:, None, None] * alpha
    images += rng.normal(0.0, config.noise, size=images.shape).astype(np.float32)
    return torch.from_numpy(np.clip(images, 0.0, 1.0)[:, None]), which


@register_source("digits-nuisance")
class NuisanceDigits(Source):
    description = "real 8×8 digits drawn at a random size and position, 10 classes (the benchmark)"
    preset = "digits-nuisance"

    def load(self, request: SourceRequest) -> ImageSet:
        glyphs, y, keep, test = load_glyphs()  # the test digits are those of `digits`
        cfg = NuisanceConfig()
        train, val = (keep[i] for i in carve(len(keep), val_count(len(keep)), y[keep]))
        rng = np.random.default_rng((request.seed, request.resolution))
        splits = {}
        for name, digits, copies in (("train", train, cfg.copies), ("val", val, cfg.copies),
                                     ("test", test, cfg.test_copies)):
            images, which = render_digits(glyphs[digits], copies, request.resolution, rng, cfg)
            splits[name] = (images, y[digits][which])
        return assemble(request.spec, *splits["train"], *splits["test"], val=splits["val"][0],
                        val_labels=splits["val"][1], classes=10, limit=request.size)

    def status(self, path: str | None, data_root: Path, resolution: int) -> SourceStatus:
        cfg = NuisanceConfig()
        n_train, n_val, n_test = split_sizes()
        return SourceStatus(
            name=self.name,
            available=True,
            where="rendered from scikit-learn's digits",
            shape=(1, resolution, resolution),
            sizes=sizes_text(n_train * cfg.copies, n_val * cfg.copies, n_test * cfg.test_copies),
            description=self.description,
        )
