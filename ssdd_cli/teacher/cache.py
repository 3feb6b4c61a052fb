"""The teacher cache that `ssdd distill` uses, and the cache of teacher features next to it.

Layout (root: `$SSDD_CACHE/teachers` if SSDD_CACHE is set, else `~/.cache/ssdd/teachers`):

    {root}/{source}-{arch}.safetensors                       the teacher (a `save_teacher` file)
    {root}/{source}-{arch}.safetensors.ckpt                  its checkpoint while it trains
    {root}/{source}-{arch}.features/{sha[:16]}-{split}-{view}-{images[:16]}.safetensors

`{source}` is the spec with every character outside [A-Za-z0-9._-] replaced by "_", plus a
short hash of the exact spec when anything had to be replaced (so `imagefolder:/a/b` and
`imagefolder:/a_b` differ). A feature file's name holds the teacher's sha256 prefix and a
fingerprint of the images, and its metadata holds both in full: a retrained teacher or other
images never reuse stale features.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor

from ssdd_cli.errors import UsageError
from ssdd_cli.io import atomic_write
from ssdd_cli.models import Backbone, BackboneFileError, extract_features
from ssdd_cli.progress import Callback, ProgressEvent, silent
from ssdd_cli.teacher.store import load_teacher, save_teacher, weights_sha256
from ssdd_cli.teacher.trainer import TeacherConfig, train_teacher

CACHE_ENV = "SSDD_CACHE"

# Deterministic views of the real images whose teacher targets can be computed once and cached
# (`--real-aug none|flip`); random views (crop-flip) are recomputed per batch by the caller.
VIEWS: dict[str, Callable[[Tensor], Tensor]] = {
    "identity": lambda x: x,
    "flip": lambda x: x.flip(-1),
}


def default_cache_root() -> Path:
    """`$SSDD_CACHE/teachers` if SSDD_CACHE is set, else `~/.cache/ssdd/teachers`."""
    env = os.environ.get(CACHE_ENV)
    return (Path(env) / "teachers" if env else Path("~/.cache/ssdd/teachers")).expanduser()


def _slug(text: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]", "_", text)
    if slug != text:
        slug += "-" + hashlib.sha256(text.encode()).hexdigest()[:8]
    return slug


def teacher_path(source: str, arch: str, cache_root: Path | None = None) -> Path:
    """Where the cached teacher for (source spec, arch) lives."""
    root = Path(cache_root) if cache_root is not None else default_cache_root()
    return root / f"{_slug(source)}-{_slug(arch)}.safetensors"


def get_or_train_teacher(
    source_spec: str,
    *,
    arch: str | None = None,
    data_root: Path | None = None,
    device: torch.device | str = "cpu",
    callback: Callback = silent,
    cache_root: Path | None = None,
    seed: int = 0,
    download: bool = False,
    config: TeacherConfig | None = None,
) -> tuple[Backbone, dict[str, str], Path]:
    """The cached teacher for (source, arch), training it with the preset's settings if absent.

    arch: None for the preset's teacher architecture. config: the settings to train with when
    nothing is cached (default `TeacherConfig.from_preset(source_spec, arch=arch, seed=seed)`;
    its arch then names the cache entry). Training reports a notice first and checkpoints beside
    the cache file, so an interrupted run resumes on the next call.
    Returns (backbone in eval mode on `device`, its metadata, the teacher file's path).
    """
    if config is None:
        config = TeacherConfig.from_preset(source_spec, arch=arch, seed=seed)
    path = teacher_path(source_spec, config.arch, cache_root)
    if not path.exists():
        from ssdd_cli.data import load_source  # deferred: the data package is heavy to import

        path.parent.mkdir(parents=True, exist_ok=True)
        callback(ProgressEvent("teacher", message=(
            f"no cached teacher for ({source_spec}, {config.arch}): training one "
            f"({config.epochs} epochs; `ssdd teacher` trains one explicitly) into {path}"
        )))
        images = load_source(source_spec, data_root=data_root, download=download)
        ckpt = path.with_name(path.name + ".ckpt")
        result = train_teacher(images.train, images.mean, images.std, config, device=device,
                               callback=callback, checkpoint_path=ckpt, resume=True)
        save_teacher(path, result, source=source_spec, mean=images.mean, std=images.std)
        ckpt.unlink(missing_ok=True)
    try:
        backbone, meta = load_teacher(path, map_location=device)
    except BackboneFileError as error:
        raise BackboneFileError(
            f"the cached teacher {path} cannot be used, so delete it and ssdd will train a new "
            f"one ({error})"
        ) from error
    return backbone, meta, path


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
    (another teacher, other images) or the expected shape is recomputed and replaced.
    """
    _view(view)
    sha = meta.get("ssdd.sha256") or weights_sha256(backbone)
    if teacher_file is None:
        return compute_features(backbone, images_normalised, view, device=device,
                                batch_size=batch_size)
    images_sha = _fingerprint(images_normalised)
    key = {
        "ssdd.kind": "teacher-features",
        "ssdd.teacher_sha256": sha,
        "ssdd.source": meta.get("ssdd.source", ""),
        "ssdd.split": split,
        "ssdd.view": view,
        "ssdd.images_sha256": images_sha,
    }
    folder = Path(teacher_file).with_name(Path(teacher_file).stem + ".features")
    path = folder / f"{sha[:16]}-{_slug(split)}-{_slug(view)}-{images_sha[:16]}.safetensors"
    expected = (len(images_normalised), backbone.feature_dim)
    cached = _read_features(path, key, expected)
    if cached is not None:
        return cached.to(device)
    feats = compute_features(backbone, images_normalised, view, device=device,
                             batch_size=batch_size)
    folder.mkdir(parents=True, exist_ok=True)
    cpu = feats.detach().to("cpu").contiguous()
    atomic_write(path, lambda tmp: save_file({"features": cpu}, str(tmp), metadata=key))
    return feats


def _view(name: str) -> Callable[[Tensor], Tensor]:
    if name not in VIEWS:
        raise UsageError(f"unknown teacher view {name!r}; choose one of: {', '.join(VIEWS)}.")
    return VIEWS[name]


def _fingerprint(images: Tensor) -> str:
    """sha256 of the images' shape, dtype and raw bytes (on the CPU)."""
    t = images.detach().to("cpu").contiguous()
    h = hashlib.sha256(f"{t.dtype}{list(t.shape)}".encode())
    h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _read_features(path: Path, key: dict[str, str], shape: tuple[int, int]) -> Tensor | None:
    """The cached features at `path` if the file exists and matches `key` and `shape`, else None."""
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            feats = f.get_tensor("features") if "features" in f.keys() else None
    except BaseException as error:  # an unreadable cache entry is rebuilt, never fatal
        # safetensors can raise pyo3's PanicException (a BaseException) on a damaged header.
        if isinstance(error, (KeyboardInterrupt, SystemExit)):
            raise
        return None
    if feats is None or any(meta.get(k) != v for k, v in key.items()):
        return None
    if tuple(feats.shape) != shape or not torch.isfinite(feats).all():
        return None
    return feats

