"""Where a run's teacher comes from: a given file, or the cached teacher of the source.

Cache layout (root: `$SSDD_CACHE/teachers` if SSDD_CACHE is set, else `~/.cache/ssdd/teachers`):

    {root}/{source}-{arch}.safetensors         the teacher (a `save_teacher` file)
    {root}/{source}-{arch}.safetensors.ckpt    its checkpoint while it trains
    {root}/{source}-{arch}.features/           its cached features (`teacher.cache`)

`{source}` is the source spec made safe for a file name (`teacher.cache.slug`), followed by
`@{preset}` when a preset other than the source's own is chosen (e.g. `imagefolder:PATH` at
`imagenette`'s 128 px): a teacher belongs to its resolution.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors import safe_open

from ssdd_cli.data import ImageSet, load_source, source_preset
from ssdd_cli.errors import UsageError
from ssdd_cli.io import is_library_failure
from ssdd_cli.kit.distributed import barrier, is_main
from ssdd_cli.models import Backbone, BackboneFileError
from ssdd_cli.progress import Callback, ProgressEvent, silent
from ssdd_cli.teacher.cache import slug
from ssdd_cli.teacher.store import TRAINED_ON, load_teacher, save_teacher
from ssdd_cli.teacher.trainer import TeacherConfig, train_teacher

CACHE_ENV = "SSDD_CACHE"


def default_cache_root() -> Path:
    """`$SSDD_CACHE/teachers` if SSDD_CACHE is set, else `~/.cache/ssdd/teachers`."""
    env = os.environ.get(CACHE_ENV)
    return (Path(env) / "teachers" if env else Path("~/.cache/ssdd/teachers")).expanduser()


def teacher_path(source: str, arch: str, cache_root: Path | None = None, preset: str | None = None) -> Path:
    """Where the cached teacher for (source spec, arch[, preset other than the source's]) lives."""
    root = Path(cache_root) if cache_root is not None else default_cache_root()
    own = preset is None or preset == source_preset(source).name
    return root / f"{slug(source if own else f'{source}@{preset}')}-{slug(arch)}.safetensors"


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
    preset: str | None = None,
) -> tuple[Backbone, dict[str, str], Path]:
    """The cached teacher for (source, arch), training it with the preset's settings if absent.

    arch: None for the preset's teacher architecture. preset: the preset's name (None: the
    source's own); it sets the resolution and the recipe. config: the settings to train with when
    nothing is cached (default: the preset's, with `arch` and `seed`); its arch names the cache
    entry. Training reports a notice first and checkpoints beside the cache file, so an
    interrupted run resumes on the next call.
    Returns (backbone in eval mode on `device`, its metadata, the teacher file's path).
    """
    chosen = source_preset(source_spec, preset)
    if config is None:
        config = TeacherConfig.from_preset(chosen.teacher, arch=arch, seed=seed)
    path = teacher_path(source_spec, config.arch, cache_root, chosen.name)
    header = _metadata(path) if path.exists() else {}  # {}: absent, or unreadable (the load says why)
    if header and header.get("ssdd.trained_on") != TRAINED_ON:
        callback(ProgressEvent("teacher", message=(
            f"the cached teacher {path} was trained on the validation images too (before they were "
            "held out of the source side): training a new one in its place")))
        if is_main():
            path.unlink(missing_ok=True)
        barrier()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        callback(ProgressEvent("teacher", message=(
            f"no cached teacher for ({source_spec}, {config.arch}): training one "
            f"({config.epochs} epochs; `ssdd teacher` trains one explicitly) into {path}"
        )))
        images = load_source(source_spec, data_root=data_root, download=download,
                             resolution=chosen.resolution)
        ckpt = path.with_name(path.name + ".ckpt")
        result = train_teacher(images.source, images.mean, images.std, config, device=device,
                               callback=callback, checkpoint_path=ckpt, resume=True)
        if is_main():  # under torchrun every rank trained the same teacher; rank 0 writes it
            save_teacher(path, result, source=source_spec, mean=images.mean, std=images.std)
            ckpt.unlink(missing_ok=True)
        barrier()
    try:
        backbone, meta = load_teacher(path, map_location=device)
    except BackboneFileError as error:
        raise BackboneFileError(
            f"the cached teacher {path} cannot be used, so delete it and ssdd will train a new "
            f"one ({error})"
        ) from error
    return backbone, meta, path


def find_cached_teacher(sha256: str, cache_root: Path | None = None) -> Path | None:
    """The teacher file in the cache whose recorded weights sha256 is `sha256`, or None.

    Reads only the files' headers (their metadata), so a large cache is searched in moments.
    """
    root = Path(cache_root) if cache_root is not None else default_cache_root()
    for path in sorted(root.glob("*.safetensors")) if root.is_dir() else []:
        meta = _metadata(path)  # an unreadable file ({}) is not the teacher sought
        if meta.get("ssdd.kind") == "teacher" and meta.get("ssdd.sha256") == sha256:
            return path
    return None


def _metadata(path: Path) -> dict[str, str]:
    """The string metadata of a safetensors file's header ({} when it does not read)."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except BaseException as error:
        if not is_library_failure(error):
            raise
        return {}


def resolve_teacher(path: Path | None, source: str, data: ImageSet, *, data_root: Path | None = None,
                    device: torch.device | str = "cpu", callback: Callback = silent,
                    preset: str | None = None,
                    download: bool = False) -> tuple[Backbone, dict[str, str], Path]:
    """The teacher file at `path`, or the source's cached teacher for `preset` (trained first if
    absent), checked against the images of `data`. Returns (backbone, metadata, its file)."""
    if path is not None:
        backbone, meta = load_teacher(path, map_location=device)
    else:
        backbone, meta, path = get_or_train_teacher(source, data_root=data_root, device=device,
                                                    callback=callback, preset=preset, download=download)
    if meta.get("ssdd.trained_on") != TRAINED_ON:
        callback(ProgressEvent("teacher", message=(
            f"note: the teacher {path} records no training on the train split alone (an imported "
            "teacher or one from before validation was held out), so it may have seen the validation "
            "images the held-out signal and validation screens score; `ssdd teacher` trains one that "
            "has not")))
    if (backbone.in_channels, backbone.image_size) != (data.channels, data.resolution):
        raise UsageError(
            f"the teacher {path} takes {backbone.in_channels}×{backbone.image_size}² images but "
            f"{data.name} is {data.channels}×{data.resolution}²; use a teacher trained on this source.",
            option="teacher")
    return backbone, meta, path
