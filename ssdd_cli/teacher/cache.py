"""The cache of teacher features, beside the teacher file they come from.

    {teacher}.features/{sha[:16]}-{split}-{view}-{images[:16]}.safetensors

A feature file's name holds the teacher's sha256 prefix and a fingerprint of the images, and its
metadata holds both in full: a retrained teacher or other images never reuse stale features.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor

from ssdd_cli.errors import SSDDError, UsageError
from ssdd_cli.io import atomic_write, is_library_failure
from ssdd_cli.kit.checkpoint import tensor_sha256
from ssdd_cli.kit.distributed import is_main
from ssdd_cli.models import Backbone, extract_features
from ssdd_cli.teacher.store import weights_sha256

# Deterministic views of the real images whose teacher targets can be computed once and cached
# (the distillation's real side `none` and `flip`); random views (crop-flip) are recomputed per
# batch by the caller.
VIEWS: dict[str, Callable[[Tensor], Tensor]] = {
    "identity": lambda x: x,
    "flip": lambda x: x.flip(-1),
}


def slug(text: str) -> str:
    """`text` with every character outside [A-Za-z0-9._-] replaced by "_", plus a short hash of
    the exact text when anything had to be replaced (so "a/b" and "a_b" differ)."""
    out = re.sub(r"[^A-Za-z0-9._-]", "_", text)
    if out != text:
        out += "-" + hashlib.sha256(text.encode()).hexdigest()[:8]
    return out


@torch.no_grad()
def compute_features(
    backbone: Backbone,
    images_normalised: Tensor,
    view: str = "identity",
    *,
    device: torch.device | str = "cpu",
    batch_size: int = 512,
) -> Tensor:
    """g(view(x)): teacher features (n, d_y) of normalised images (n, c, r, r), in eval mode.

    Returned float32 on `device`.
    """
    return extract_features(backbone, images_normalised, batch_size=batch_size, device=device,
                            transform=_view(view))


def teacher_features(
    backbone: Backbone,
    meta: dict[str, str],
    images_normalised: Tensor,
    view: str = "identity",
    *,
    device: torch.device | str = "cpu",
    batch_size: int = 512,
    teacher_file: Path | None = None,
    split: str = "train",
) -> Tensor:
    """Teacher features (n, d_y) of `images_normalised` (n, c, r, r) under `view`, cached.

    view: a name in `VIEWS` ("identity", "flip").
    teacher_file: the teacher's path; its features are cached in `{teacher_file stem}.features/`
        beside it, keyed by (teacher sha256, source, split, view, images fingerprint). None: no
        cache, compute every time.
    The cache is checked by content, not trusted: a file whose metadata does not match the key
    (another teacher, other images) or the expected shape is recomputed and replaced. A cache
    that cannot be written (a read-only folder, a file in the folder's place) is skipped: the
    features are returned uncached, never an error after the work is done.
    """
    _view(view)
    sha = meta.get("ssdd.sha256") or weights_sha256(backbone)
    if teacher_file is None:
        return compute_features(backbone, images_normalised, view, device=device,
                                batch_size=batch_size)
    images_sha = tensor_sha256(images_normalised)
    key = {
        "ssdd.kind": "teacher-features",
        "ssdd.teacher_sha256": sha,
        "ssdd.source": meta.get("ssdd.source", ""),
        "ssdd.split": split,
        "ssdd.view": view,
        "ssdd.images_sha256": images_sha,
    }
    folder = Path(teacher_file).with_name(Path(teacher_file).stem + ".features")
    path = folder / f"{sha[:16]}-{slug(split)}-{slug(view)}-{images_sha[:16]}.safetensors"
    expected = (len(images_normalised), backbone.feature_dim)
    cached = _read_features(path, key, expected)
    if cached is not None:
        return cached.to(device)
    feats = compute_features(backbone, images_normalised, view, device=device,
                             batch_size=batch_size)
    if is_main():  # under torchrun every rank computes the same features; rank 0 caches them
        cpu = feats.detach().to("cpu").contiguous()
        try:
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write(path, lambda tmp: save_file({"features": cpu}, str(tmp), metadata=key))
        except (OSError, SSDDError):  # the cache is an optimisation: unwritable, it is skipped
            pass
    return feats


def _view(name: str) -> Callable[[Tensor], Tensor]:
    if name not in VIEWS:
        raise UsageError(f"unknown teacher view {name!r}; choose one of: {', '.join(VIEWS)}.", option="view")
    return VIEWS[name]


def _read_features(path: Path, key: dict[str, str], shape: tuple[int, int]) -> Tensor | None:
    """The cached features at `path` if the file exists and matches `key` and `shape`, else None."""
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            feats = f.get_tensor("features") if "features" in f.keys() else None
    except BaseException as error:  # an unreadable cache entry is rebuilt, never fatal
        if not is_library_failure(error):
            raise
        return None
    if feats is None or any(meta.get(k) != v for k, v in key.items()):
        return None
    if tuple(feats.shape) != shape or not torch.isfinite(feats).all():
        return None
    return feats

