"""Barlow Twins' two-view augmentation, vectorised over a batch on the device.

Every per-image random parameter (crop box, flip, jitter factors, which ops fire) is drawn up
front on the CPU from the caller's `torch.Generator`, as one small tensor per parameter, then
moved to the images' device. So a run is reproducible from the generator alone, identical on CPU
and GPU up to floating point, and there is no Python loop over images: the crop is one
`affine_grid`/`grid_sample`, the colour ops are broadcast tensor arithmetic.

Departures from the reference pipeline (torchvision transforms, one image at a time), on purpose:

- Random resized crop: torchvision retries 10 times for a box inside the image, then falls back
  to a centre crop. We draw 10 candidates per image at once and keep the first that fits; images
  with none use the whole image. Resampling is bilinear without antialiasing.
- Colour jitter applies brightness, contrast, saturation, hue in this fixed order (torchvision
  shuffles the order per image). Hue is approximated by rotating the chroma plane in YIQ space by
  2π·h instead of shifting H in HSV: same effect for small h, far cheaper, differentiable.
- Gaussian blur (p = 1.0 on view 1, 0.1 on view 2 in the paper) is skipped below
  `blur_min_resolution` pixels: at 16-32 px a 10 %-of-the-side kernel is one or three pixels,
  and solo-learn's CIFAR recipe omits it too. Above it, σ ∈ [0.1, 2.0]·side/224 (the paper's
  range rescaled from 224 px).
- 1-channel sources: saturation, hue and grayscale are meaningless and skipped; brightness,
  contrast and solarize still apply.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ssdd_cli.registry import Registry

# ITU-R 601 luma, as torchvision's rgb_to_grayscale.
_LUMA = (0.299, 0.587, 0.114)
_RGB_TO_YIQ = torch.tensor(
    [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], dtype=torch.float64
)


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and ranges of the SSL augmentation; defaults are the Barlow Twins paper's.

    Pairs `(view1, view2)` give the asymmetric probabilities of the two views.
    """

    crop_scale: tuple[float, float] = (0.08, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    jitter_p: float = 0.8
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.2
    hue: float = 0.1
    grayscale_p: float = 0.2
    solarize_p: tuple[float, float] = (0.0, 0.2)
    blur_p: tuple[float, float] = (1.0, 0.1)
    blur_min_resolution: int = 64


AUGMENT_RECIPES: Registry[AugmentConfig] = Registry("teacher augmentation", option="augment")
# The Barlow Twins paper's asymmetric views (blur p = 1.0 / 0.1, solarize p = 0 / 0.2); solo-learn's
# ImageNet recipe (scripts/pretrain/imagenet*/augmentations/asymmetric.yaml) is the same.
AUGMENT_RECIPES.add("barlow-twins", AugmentConfig())
# solo-learn's CIFAR recipe (scripts/pretrain/cifar/augmentations/asymmetric.yaml): no blur at all.
AUGMENT_RECIPES.add("solo-learn-cifar", AugmentConfig(blur_p=(0.0, 0.0)))
# The Barlow Twins paper's views with crops of 30-100% of the area: the `digits-nuisance` teacher's
# (at 16 px a crop of 8% keeps a fragment of a stroke; wider crops keep the digit while its
# position and scale vary, which is the invariance that benchmark asks for; measured in
# docs/results.md).
AUGMENT_RECIPES.add("barlow-twins-crop30", AugmentConfig(crop_scale=(0.3, 1.0)))


def two_views(
    x: Tensor,
    generator: torch.Generator,
    config: AugmentConfig = AugmentConfig(),
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> tuple[Tensor, Tensor]:
    """Two independently augmented views of a batch.

    x: (B, C, H, W) images in [0, 1] on any device (C = 1 or 3).
    generator: a CPU `torch.Generator`; it alone decides every random choice.
    mean, std: per-channel normalisation applied to the views after augmenting (the colour ops
    are defined on [0, 1] images); leave None to get [0, 1] views.
    Returns (v1, v2), each (B, C, H, W) float32 on x's device. View 2 alone may be solarised.
    """
    v1 = augment(x, generator, config, solarize_p=config.solarize_p[0], blur_p=config.blur_p[0])
    v2 = augment(x, generator, config, solarize_p=config.solarize_p[1], blur_p=config.blur_p[1])
    if mean is not None and std is not None:
        m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        s = torch.tensor(std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        v1, v2 = (v1 - m) / s, (v2 - m) / s
    return v1, v2


def augment(
    x: Tensor,
    generator: torch.Generator,
    config: AugmentConfig = AugmentConfig(),
    *,
    solarize_p: float = 0.0,
    blur_p: float = 0.0,
) -> Tensor:
    """One augmented view: crop-resize, flip, colour jitter, grayscale, blur, solarize.

    x: (B, C, H, W) in [0, 1]; returns (B, C, H, W) in [0, 1] on the same device.
    """
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"expected (B, 1|3, H, W) images, got {tuple(x.shape)}")
    b, c, h, w = x.shape
    dev = x.device

    def rand(*shape: int) -> Tensor:
        return torch.rand(shape, generator=generator, dtype=torch.float32).to(dev)

    def uniform(lo: float, hi: float) -> Tensor:
        return lo + (hi - lo) * rand(b)

    # Draw everything in a fixed order, whether or not an op fires, so the stream of draws (and
    # therefore every later batch) does not depend on which branches ran.
    crop = _crop_theta(b, config, generator).to(dev)
    flip = rand(b) < config.flip_p
    jitter = rand(b) < config.jitter_p
    bright = uniform(1 - config.brightness, 1 + config.brightness)
    contrast = uniform(1 - config.contrast, 1 + config.contrast)
    sat = uniform(1 - config.saturation, 1 + config.saturation)
    hue = uniform(-config.hue, config.hue)
    gray = rand(b) < config.grayscale_p
    blur = rand(b) < blur_p
    sigma = uniform(0.1, 2.0) * (max(h, w) / 224.0)
    solar = rand(b) < solarize_p

    crop[:, 0, 0] = torch.where(flip, -crop[:, 0, 0], crop[:, 0, 0])
    grid = F.affine_grid(crop, [b, c, h, w], align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    jittered = _adjust_brightness(out, bright)
    jittered = _adjust_contrast(jittered, contrast)
    if c == 3:
        jittered = _adjust_saturation(jittered, sat)
        jittered = _rotate_hue(jittered, hue)
    out = torch.where(jitter.view(b, 1, 1, 1), jittered, out)
    if c == 3:
        out = torch.where(gray.view(b, 1, 1, 1), _grayscale(out).expand_as(out), out)
    if blur_p > 0 and min(h, w) >= config.blur_min_resolution:
        out = torch.where(blur.view(b, 1, 1, 1), _gaussian_blur(out, sigma), out)
    if solarize_p > 0:
        out = torch.where(solar.view(b, 1, 1, 1), torch.where(out < 0.5, out, 1.0 - out), out)
    return out


def _crop_theta(b: int, config: AugmentConfig, generator: torch.Generator) -> Tensor:
    """(B, 2, 3) affine matrices mapping the output grid onto a random box of the input.

    The box has area fraction s ~ U(scale) and aspect ratio r ~ logU(ratio); in `affine_grid`'s
    [-1, 1] coordinates its half-width/height are w = √(s·r), h = √(s/r) and its centre is uniform
    over the positions that keep it inside the image.
    """
    tries = 10
    lo, hi = config.crop_scale
    area = lo + (hi - lo) * torch.rand((b, tries), generator=generator)
    log_r = math.log(config.crop_ratio[0]) + (
        math.log(config.crop_ratio[1]) - math.log(config.crop_ratio[0])
    ) * torch.rand((b, tries), generator=generator)
    ratio = torch.exp(log_r)
    bw, bh = torch.sqrt(area * ratio), torch.sqrt(area / ratio)
    ok = (bw <= 1.0) & (bh <= 1.0)
    first = torch.argmax(ok.int(), dim=1, keepdim=True)  # first fitting try (0 if none fits)
    any_ok = ok.any(dim=1)
    bw = torch.where(any_ok, bw.gather(1, first).squeeze(1), torch.ones(b))
    bh = torch.where(any_ok, bh.gather(1, first).squeeze(1), torch.ones(b))
    cx = (2 * torch.rand(b, generator=generator) - 1) * (1 - bw)
    cy = (2 * torch.rand(b, generator=generator) - 1) * (1 - bh)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2] = bw, cx
    theta[:, 1, 1], theta[:, 1, 2] = bh, cy
    return theta


def _grayscale(x: Tensor) -> Tensor:
    """(B, 3, H, W) → (B, 1, H, W) luma."""
    r, g, b = x.unbind(dim=1)
    return (_LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b).unsqueeze(1)


def _adjust_brightness(x: Tensor, factor: Tensor) -> Tensor:
    """x·f per image, clamped to [0, 1]; factor: (B,)."""
    return (x * factor.view(-1, 1, 1, 1)).clamp(0.0, 1.0)


def _adjust_contrast(x: Tensor, factor: Tensor) -> Tensor:
    """Blend each image with its mean grey level (torchvision's definition); factor: (B,)."""
    grey = _grayscale(x) if x.shape[1] == 3 else x
    m = grey.mean(dim=(1, 2, 3), keepdim=True)
    f = factor.view(-1, 1, 1, 1)
    return (f * x + (1 - f) * m).clamp(0.0, 1.0)


def _adjust_saturation(x: Tensor, factor: Tensor) -> Tensor:
    """Blend each RGB image with its own grayscale version; factor: (B,)."""
    f = factor.view(-1, 1, 1, 1)
    return (f * x + (1 - f) * _grayscale(x)).clamp(0.0, 1.0)


def _rotate_hue(x: Tensor, shift: Tensor) -> Tensor:
    """Rotate chroma (I, Q) by 2π·shift per image in YIQ space; shift: (B,) in turns."""
    t = _RGB_TO_YIQ.to(device=x.device)
    angle = 2 * math.pi * shift.to(torch.float64)
    cos, sin = torch.cos(angle), torch.sin(angle)
    rot = torch.zeros(shift.shape[0], 3, 3, dtype=torch.float64, device=x.device)
    rot[:, 0, 0] = 1.0
    rot[:, 1, 1], rot[:, 1, 2] = cos, -sin
    rot[:, 2, 1], rot[:, 2, 2] = sin, cos
    m = (torch.linalg.inv(t) @ rot @ t).to(x.dtype)  # (B, 3, 3) RGB → RGB
    return torch.einsum("bij,bjhw->bihw", m, x).clamp(0.0, 1.0)


def _gaussian_blur(x: Tensor, sigma: Tensor) -> Tensor:
    """Separable Gaussian blur with a per-image σ (B,), kernel ≈ 10 % of the side, reflect pad."""
    b, c, h, w = x.shape
    k = max(3, (int(0.1 * max(h, w)) // 2) * 2 + 1)
    pos = torch.arange(k, device=x.device, dtype=x.dtype) - k // 2
    kern = torch.exp(-(pos.view(1, -1) ** 2) / (2 * sigma.view(-1, 1) ** 2))  # (B, k)
    kern = (kern / kern.sum(dim=1, keepdim=True)).repeat_interleave(c, dim=0)  # (B·C, k)
    flat = x.reshape(1, b * c, h, w)
    flat = F.pad(flat, (k // 2, k // 2, k // 2, k // 2), mode="reflect")
    flat = F.conv2d(flat, kern.view(b * c, 1, k, 1), groups=b * c)
    flat = F.conv2d(flat, kern.view(b * c, 1, 1, k), groups=b * c)
    return flat.view(b, c, h, w)
