"""Algorithm 2 written to disk: true-colour PNGs of X̃_s, paged grids with named rows, the targets.

The folder is the command's own: `reconstruct.json` lists every file a reconstruction wrote in
it, so the next one removes exactly those (and only those) before writing its own, and refuses
to overwrite a file it did not write.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from safetensors.torch import save_file
from torch import Tensor

from ssdd_cli.artifact.materialize import DistilledSet, materialize
from ssdd_cli.bundle import Bundle
from ssdd_cli.data import denormalize
from ssdd_cli.errors import OutputError, UsageError
from ssdd_cli.io import atomic_write, atomic_write_bytes

OUTPUTS = "reconstruct.json"  # the list of files this reconstruction wrote in its folder
PAD = 2  # pixels between two grid cells (after upscaling)


@dataclass(frozen=True)
class Reconstruction:
    """What `write_reconstruction` wrote.

    images: distilled images written (m); views: augmented-view images written; pages: the grid
    pages; clamped: the fraction of displayed pixel values outside [0, 1], clamped in the PNGs
    (the artifact and the targets keep them), with their range `value_range`; removed: earlier
    outputs of the command removed from the folder first.
    """

    images: int
    views: int
    pages: tuple[Path, ...]
    targets: Path
    clamped: float
    value_range: tuple[float, float]
    removed: int
    files: tuple[Path, ...] = field(default=(), repr=False)


def to_uint8(images: Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """(B, c, h, w) normalised -> (B, h, w, c) uint8 in true colour (clamped to [0, 1])."""
    x = denormalize(images, mean, std).clamp(0, 1)
    return (x * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def out_of_range(images: Tensor, mean: tuple[float, ...],
                 std: tuple[float, ...]) -> tuple[float, float, float]:
    """(fraction of values outside [0, 1], min, max) of the true-colour images."""
    x = denormalize(images, mean, std)
    return float(((x < 0) | (x > 1)).float().mean()), float(x.min()), float(x.max())


def write_png(path: Path, pixels: np.ndarray) -> None:
    """(h, w, c) uint8 -> PNG (grayscale for c = 1), atomically."""
    image = Image.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels)
    atomic_write(path, lambda tmp: image.save(tmp, format="PNG"))


def row_titles(ds: DistilledSet) -> tuple[str, ...]:
    """A title per grid row: the stored images, then each augmented view or decoded tile."""
    if ds.packed is not None:
        return ("stored", *ds.views)
    return tuple("image" if v == "identity" else v for v in ds.views)


def rows_of(ds: DistilledSet, m: int) -> np.ndarray:
    """(rows, m, h, w, c) uint8: the stored images then every view, as in `row_titles`."""
    pixels = to_uint8(ds.images, ds.mean, ds.std)
    stored = to_uint8(ds.packed, ds.mean, ds.std) if ds.packed is not None else pixels[:m]
    first_view = 0 if ds.packed is not None else 1
    views = pixels[first_view * m:].reshape(-1, m, *pixels.shape[1:])  # decoded tiles are full-size too
    return np.concatenate([stored[None], views])


def grid_page(panels: list[tuple[str, np.ndarray]], titles: tuple[str, ...], heading: str,
              upscale: int) -> np.ndarray:
    """One page: a heading, then panels side by side (e.g. initial | distilled), each a grid of
    rows (views, titled on the left) by columns (images). panels: (title, (rows, n, h, w, c))."""
    font = ImageFont.load_default(size=12)
    rows, n, h, w, c = panels[0][1].shape
    cell_h, cell_w = h * upscale, w * upscale
    left = 8 + max(int(font.getlength(t)) for t in titles)
    panel_w = n * (cell_w + PAD)
    top = 40
    width = left + len(panels) * (panel_w + 16)
    height = top + rows * (cell_h + PAD) + 4
    page = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(page)
    draw.text((4, 4), heading, fill=(0, 0, 0), font=font)
    for p, (title, grid) in enumerate(panels):
        x0 = left + p * (panel_w + 16)
        draw.text((x0, 22), title, fill=(0, 0, 0), font=font)
        for r in range(rows):
            y = top + r * (cell_h + PAD)
            if p == 0:
                draw.text((4, y + cell_h // 2 - 6), titles[r], fill=(0, 0, 0), font=font)
            for i in range(n):
                cell = grid[r, i]
                tile = Image.fromarray(cell[..., 0] if c == 1 else cell).convert("RGB")
                big = tile.resize((cell_w, cell_h), Image.Resampling.NEAREST)
                page.paste(big, (x0 + i * (cell_w + PAD), y))
    return np.asarray(page)


def write_reconstruction(bundle: Bundle, out: Path, views: bool = True, upscale: int = 4, per_page: int = 16,
                         initial: Bundle | None = None) -> Reconstruction:
    """Write X_s as `image_0000.png`…, the views as `views/{view}/image_….png` (if `views`),
    `grid_001.png`… (every image, `per_page` a page; a row per view, titled; beside the
    `initial` artifact's images when given, e.g. the same run with `--steps 0`) and
    `targets.safetensors` holding Y_s and the rebuilt targets Ỹ^Q (or labels). A multi-formation
    artifact's stored images are the `image_*.png`, its decoded tiles the views.

    The folder's earlier outputs (listed in its `reconstruct.json`) are removed first; a file
    this would overwrite that no reconstruction wrote is refused (`OutputError`), before any
    change.
    """
    if per_page < 1 or upscale < 1:
        raise UsageError("a grid page needs at least one image, at a scale of at least 1.", option="per_page")
    ds = materialize(bundle)
    m = bundle.manifest.m
    titles = row_titles(ds)
    rows = rows_of(ds, m)
    panels_src = [("distilled", rows)]
    check = [ds.images] + ([ds.packed] if ds.packed is not None else [])
    if initial is not None:
        first = materialize(initial)
        if initial.manifest.m != m or row_titles(first) != titles or first.images.shape != ds.images.shape:
            raise UsageError(f"the initial artifact holds {initial.manifest.m} images of views "
                             f"{', '.join(row_titles(first))}, the distilled one {m} of {', '.join(titles)}; "
                             "give the same run distilled with --steps 0.", option="initial")
        panels_src.insert(0, ("initial", rows_of(first, m)))
        check += [first.images]
    fractions = [out_of_range(x, ds.mean, ds.std) for x in check]
    total = sum(x.numel() for x in check)
    clamped = sum(f * x.numel() for (f, _, _), x in zip(fractions, check, strict=True)) / total
    value_range = (min(f[1] for f in fractions), max(f[2] for f in fractions))

    n_pages = math.ceil(m / per_page)
    first_view = 0 if ds.packed is not None else 1
    view_names = ds.views[first_view:] if views else ()
    planned = [f"image_{i:04d}.png" for i in range(m)]
    planned += [f"views/{name}/image_{i:04d}.png" for name in view_names for i in range(m)]
    pages = [f"grid_{p + 1:03d}.png" for p in range(n_pages)]
    planned += pages + ["targets.safetensors", OUTPUTS]
    removed = _clear(out, planned)

    def target(name: str) -> Path:
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    for i in range(m):
        write_png(target(f"image_{i:04d}.png"), rows[0, i])
    n_views = 0
    for a, name in enumerate(view_names, start=1):
        for i in range(m):
            write_png(target(f"views/{name}/image_{i:04d}.png"), rows[a, i])
            n_views += 1
    for p, page in enumerate(pages):
        lo, hi = p * per_page, min(m, (p + 1) * per_page)
        heading = (f"{bundle.manifest.method} · {ds.source} · images {lo + 1} to {hi} of {m} · "
                   f"page {p + 1}/{n_pages}")
        panels = [(title, grid[:, lo:hi]) for title, grid in panels_src]
        write_png(target(page), grid_page(panels, titles, heading, upscale))
    tensors: dict[str, Tensor] = {}
    if ds.targets is not None:
        tensors["targets"] = ds.targets.clone()  # Ỹ^Q, view-major (m·(A+1), d_y)
        tensors["targets_unaugmented"] = ds.targets[:m].clone()  # Y_s
    if ds.labels is not None:
        tensors["labels"] = ds.labels.clone()
    meta = {"views": ",".join(ds.views), "m": str(m)}
    targets_path = out / "targets.safetensors"
    atomic_write(targets_path, lambda tmp: save_file(tensors, str(tmp), metadata=meta))
    _record(out, planned)
    return Reconstruction(m, n_views, tuple(out / p for p in pages), targets_path, clamped, value_range,
                          removed, tuple(out / p for p in planned))


def _earlier(out: Path) -> list[str]:
    """The files the folder's last reconstruction wrote (relative, inside the folder)."""
    path = out / OUTPUTS
    if not path.is_file():
        return []
    try:
        files = json.loads(path.read_text())["files"]
    except (ValueError, KeyError, TypeError, OSError):
        raise OutputError(f"{path} is not a list of reconstruction outputs; remove it or choose another "
                          "folder.", option="out") from None
    root = out.resolve()
    return [f for f in files if isinstance(f, str) and root in (out / f).resolve().parents]


def _clear(out: Path, planned: list[str]) -> int:
    """Check, then remove the folder's earlier outputs; returns how many were removed."""
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out} is a file; give a folder for the images.", option="out")
    earlier = _earlier(out)
    foreign = [p for p in planned if p not in earlier and p != OUTPUTS and (out / p).exists()]
    if foreign:
        raise OutputError(f"{out} holds {foreign[0]}, which ssdd reconstruct did not write; choose an empty "
                          "folder or move that file.", option="out")
    try:
        out.mkdir(parents=True, exist_ok=True)
        _record(out, sorted(set(earlier) | set(planned)))  # an interrupted run still knows its files
    except OSError as e:
        raise OutputError(f"cannot write in {out} ({e.strerror}); choose another output folder.",
                          option="out") from None
    removed = 0
    for name in earlier:
        path = out / name
        if name != OUTPUTS and path.is_file():
            path.unlink()
            removed += 1
    for folder in sorted({(out / n).parent for n in earlier}, key=lambda p: len(p.parts), reverse=True):
        while folder != out and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()  # a views/ folder emptied of our files (never one holding anything else)
            folder = folder.parent
    return removed


def _record(out: Path, files: list[str]) -> None:
    doc = {"written_by": "ssdd reconstruct", "files": files}
    atomic_write_bytes(out / OUTPUTS, (json.dumps(doc, indent=1) + "\n").encode())
