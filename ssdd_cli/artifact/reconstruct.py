"""Algorithm 2 written to disk: true-colour PNGs of X̃_s, a contact sheet, and the targets."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file
from torch import Tensor
from torchvision.utils import make_grid

from ssdd_cli.artifact.materialize import materialize
from ssdd_cli.bundle import Bundle
from ssdd_cli.data import denormalize
from ssdd_cli.errors import OutputError
from ssdd_cli.io import atomic_write


@dataclass(frozen=True)
class Reconstruction:
    images: int  # distilled images written (m)
    views: int  # augmented-view images written
    grid: Path
    targets: Path


def to_uint8(images: Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """(B, c, h, w) normalised -> (B, h, w, c) uint8 in true colour (clamped to [0, 1])."""
    x = denormalize(images, mean, std).clamp(0, 1)
    return (x * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def write_png(path: Path, pixels: np.ndarray) -> None:
    """(h, w, c) uint8 -> PNG (grayscale for c = 1), atomically."""
    image = Image.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels)
    atomic_write(path, lambda tmp: image.save(tmp, format="PNG"))


def write_reconstruction(bundle: Bundle, out: Path, views: bool = True, upscale: int = 4) -> Reconstruction:
    """Write X_s as `image_0000.png`…, the views as `views/{view}/image_….png` (if `views`),
    `grid.png` (rows = views, columns = images, upscaled for viewing) and `targets.safetensors`
    holding Y_s and the rebuilt targets Ỹ^Q (or labels). A multi-formation artifact's stored
    images are the `image_*.png`, its decoded tiles the views (`views/tile-0-0/`, …) and its
    labels are those of the decoded training set, tile-major."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create {out} ({e.strerror}); choose another output folder.",
                          option="out") from None
    ds = materialize(bundle)
    m = bundle.manifest.m
    pixels = to_uint8(ds.images, ds.mean, ds.std)
    # Multi-formation: the stored images are written as images, every decoded tile as a view.
    stored = to_uint8(ds.packed, ds.mean, ds.std) if ds.packed is not None else pixels[:m]
    first_view = 0 if ds.packed is not None else 1
    for i in range(m):
        write_png(out / f"image_{i:04d}.png", stored[i])
    n_views = 0
    if views:
        for a, name in enumerate(ds.views[first_view:], start=first_view):
            (out / "views" / name).mkdir(parents=True, exist_ok=True)
            for i in range(m):
                write_png(out / "views" / name / f"image_{i:04d}.png", pixels[a * m + i])
                n_views += 1
    shown = min(m, 16)
    chw = (pixels.shape[3], *pixels.shape[1:3])
    every = np.concatenate([stored, pixels[first_view * m:]])
    rows = torch.from_numpy(every).permute(0, 3, 1, 2).reshape(-1, m, *chw)  # (rows, m, c, h, w)
    sheet = make_grid(rows[:, :shown].reshape(-1, *rows.shape[2:]).float(), nrow=shown, padding=1,
                      pad_value=255)
    sheet = torch.nn.functional.interpolate(sheet[None], scale_factor=upscale, mode="nearest")[0]
    write_png(out / "grid.png", sheet.round().to(torch.uint8).permute(1, 2, 0).numpy())
    tensors: dict[str, Tensor] = {}
    if ds.targets is not None:
        tensors["targets"] = ds.targets.clone()  # Ỹ^Q, view-major (m·(A+1), d_y)
        tensors["targets_unaugmented"] = ds.targets[:m].clone()  # Y_s
    if ds.labels is not None:
        tensors["labels"] = ds.labels.clone()
    meta = {"views": ",".join(ds.views), "m": str(m)}
    targets_path = out / "targets.safetensors"
    atomic_write(targets_path, lambda tmp: save_file(tensors, str(tmp), metadata=meta))
    return Reconstruction(m, n_views, out / "grid.png", targets_path)
