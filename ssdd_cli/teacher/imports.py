"""Teachers trained elsewhere: read a checkpoint safely, map it onto our backbone, check it.

Layouts read (`torch.load(..., weights_only=True)`: tensors and plain containers only, never
arbitrary unpickling):

- `solo-learn`: a PyTorch Lightning checkpoint, `{"state_dict": {"backbone.<torchvision key>":
  ..., "projector.*": ..., "classifier.*": ..., ...}, "epoch": ..., ...}` (older solo-learn
  versions say `encoder.` for `backbone.`). The backbone's weights are imported; every other
  module (projector, online classifier, momentum copies) is an SSL head, dropped and recorded.
- `torchvision`: a flat torchvision ResNet state dict (`conv1.*`, `bn1.*`, `layer1.*` ...).
  KRR-ST's published teachers (`teacher_ckpt/barlow_twins_resnet18_*.pt`) are exactly this with
  `fc` replaced by an identity (so no `fc.*`); a state dict with `fc.*` has its classification
  head dropped and recorded. A `module.` prefix (DataParallel) is stripped.
- `ssdd`: a flat state dict of our own backbone's keys.

torchvision's `conv1`, `bn1`, `layer{k}` become our ResNet's `stem.0`, `stem.1`, `stages.{k-1}`;
the blocks are torchvision's `BasicBlock` on both sides. The stem follows conv1's kernel: 7x7 is
torchvision's ImageNet stem, 3x3 solo-learn's and KRR-ST's CIFAR stem (padding 2); `stem`
overrides it (e.g. "cifar-same" for a padding-1 network, which the weights cannot reveal).
Every backbone weight must be used and every weight of the network supplied (BatchNorm's
`num_batches_tracked` counters, which do not change the features, excepted).
"""

from __future__ import annotations

import json
import os
import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ssdd_cli.errors import SSDDError, UsageError
from ssdd_cli.io import sha256_file
from ssdd_cli.models import Backbone, create_backbone, extract_features
from ssdd_cli.teacher.store import SSL_METHOD, TEACHER_KIND, weights_sha256

LAYOUTS = ("solo-learn", "torchvision", "ssdd")
RESNETS = ("resnet10", "resnet18")
_BACKBONE_PREFIXES = ("backbone.", "encoder.")  # solo-learn, and its older checkpoints


class TeacherImportError(SSDDError):
    """A checkpoint that cannot be read safely, or whose weights do not fit the backbone."""


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint's backbone weights in their own key names, and what was set aside.

    layout: one of `LAYOUTS`. dropped: {module prefix: number of tensors} of the SSL heads left
    out (projector, classifier, fc, ...). epoch: the file's `epoch` entry (Lightning's), if any.
    """

    layout: str
    state: dict[str, Tensor]
    dropped: dict[str, int]
    epoch: int | None = None


def read_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """The backbone weights of the checkpoint at `path` (module docstring for the layouts)."""
    path = Path(path)
    if not path.is_file():
        raise TeacherImportError(f"checkpoint {path} does not exist; check the path.", option="checkpoint")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "unsupported global" not in str(error).lower():  # torch's refusal of a non-allowed global
            raise TeacherImportError(f"{path} is not a readable PyTorch checkpoint ({_first_line(error)}).",
                                     option="checkpoint") from None
        raise TeacherImportError(
            f"{path} holds Python objects other than tensors and plain containers, which ssdd does not "
            "unpickle; save the network's state_dict alone and import that.", option="checkpoint") from None
    except (RuntimeError, EOFError, ValueError, OSError) as error:
        raise TeacherImportError(f"{path} is not a readable PyTorch checkpoint ({_first_line(error)}).",
                                 option="checkpoint") from None
    return split_checkpoint(obj, path)


def split_checkpoint(obj: Any, path: Path) -> Checkpoint:
    """Recognise the layout of a loaded checkpoint and separate the backbone from the heads."""
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        state = _tensors(obj["state_dict"], path)
        prefix = next((p for p in _BACKBONE_PREFIXES if any(k.startswith(p) for k in state)), None)
        if prefix is None:
            raise TeacherImportError(f"{path} has a state_dict without backbone weights (no key starts "
                                     "with backbone. or encoder.); pass a solo-learn pretraining checkpoint.",
                                     option="checkpoint")
        backbone = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        dropped = _count_prefixes(k for k in state if not k.startswith(prefix))
        epoch = obj.get("epoch")
        backbone, fc = _without_head(backbone)
        dropped.update({f"{prefix}fc": fc} if fc else {})
        return Checkpoint("solo-learn", backbone, dropped, epoch if isinstance(epoch, int) else None)
    if not isinstance(obj, Mapping):
        raise TeacherImportError(f"{path} holds a {type(obj).__name__}, not a state dict or a solo-learn "
                                 "checkpoint; save the network's state_dict and import that.",
                                 option="checkpoint")
    state = _tensors(obj, path)
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    if "conv1.weight" in state:
        state, fc = _without_head(state)
        return Checkpoint("torchvision", state, {"fc": fc} if fc else {})
    return Checkpoint("ssdd", state, {})


def to_backbone_state(checkpoint: Checkpoint, arch: str) -> dict[str, Tensor]:
    """The checkpoint's weights under our backbone's key names (module docstring)."""
    if checkpoint.layout == "ssdd":
        return dict(checkpoint.state)
    if arch not in RESNETS:
        raise UsageError(f"a {checkpoint.layout} checkpoint holds a torchvision ResNet, which maps onto "
                         f"{' or '.join(RESNETS)}, not {arch!r}; choose one of those.", option="arch")
    out = {}
    for key, value in checkpoint.state.items():
        new = re.sub(r"^layer(\d+)\.", lambda m: f"stages.{int(m.group(1)) - 1}.", key)
        new = re.sub(r"^conv1\.", "stem.0.", new)
        out[re.sub(r"^bn1\.", "stem.1.", new)] = value
    return out


def import_teacher(checkpoint: Checkpoint, arch: str, in_channels: int, image_size: int, *,
                   stem: str | None = None, probe: Tensor | None = None) -> Backbone:
    """Our `arch` backbone (eval mode) carrying the checkpoint's weights, checked.

    stem: the ResNet stem (None: from conv1's kernel, module docstring). probe: normalised source
    images (B, c, r, r) whose features must be finite. Raises `TeacherImportError` in one sentence
    when weights are missing, unused or of the wrong shape, or the features are not finite.
    """
    state = to_backbone_state(checkpoint, arch)
    options: dict[str, Any] = {}
    if arch in RESNETS:
        conv1 = state.get("stem.0.weight")
        if conv1 is None:
            raise TeacherImportError("the checkpoint has no conv1 weight, so it is not a ResNet.",
                                     option="checkpoint")
        options = {"width": int(conv1.shape[0]),
                   "stem": stem or ("imagenet" if conv1.shape[-1] == 7 else "cifar")}
    model = create_backbone(arch, in_channels, image_size, **options)
    _check_names(model, state, arch)
    model.load_state_dict(state, strict=False)
    model.eval()
    if probe is not None and not bool(torch.isfinite(extract_features(model, probe)).all()):
        raise TeacherImportError("the imported teacher's features of the source are NaN or infinite, so "
                                 "it cannot serve as a teacher; check the checkpoint.", option="checkpoint")
    return model


def imported_metadata(backbone: Backbone, checkpoint: Checkpoint, path: Path, *, source: str,
                      mean: tuple[float, ...], std: tuple[float, ...],
                      ssl: str = SSL_METHOD) -> dict[str, str]:
    """The teacher-file metadata of an imported teacher; `ssdd.origin` records where it came from
    (file name, sha256, layout, the heads dropped, the stem)."""
    origin = {"file": path.name, "sha256": sha256_file(path), "layout": checkpoint.layout,
              "dropped": checkpoint.dropped, "arch_options": backbone.config, "epoch": checkpoint.epoch}
    return {"ssdd.kind": TEACHER_KIND, "ssdd.ssl": ssl, "ssdd.source": source,
            "ssdd.mean": json.dumps([float(v) for v in mean]),
            "ssdd.std": json.dumps([float(v) for v in std]),
            "ssdd.origin": json.dumps(origin, sort_keys=True), "ssdd.sha256": weights_sha256(backbone)}


def _check_names(model: Backbone, state: dict[str, Tensor], arch: str) -> None:
    expected = model.state_dict()
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    extra = [k for k in state if k not in expected]
    wrong = [k for k in state if k in expected and tuple(state[k].shape) != tuple(expected[k].shape)]
    problems = []
    if missing:
        problems.append(f"lacks {len(missing)} weight(s) of {arch} ({_few(missing)})")
    if extra:
        problems.append(f"has {len(extra)} weight(s) {arch} does not use ({_few(extra)})")
    if wrong:
        k = wrong[0]
        problems.append(f"has {len(wrong)} weight(s) of the wrong shape ({k}: {tuple(state[k].shape)}, "
                        f"{arch} needs {tuple(expected[k].shape)})")
    if problems:
        raise TeacherImportError(f"the checkpoint {' and '.join(problems)}, so it is not a {arch} of this "
                                 "shape; choose the architecture it was trained as.", option="checkpoint")


def _tensors(state: Mapping[Any, Any], path: Path) -> dict[str, Tensor]:
    out = {k: v for k, v in state.items() if isinstance(k, str) and isinstance(v, Tensor)}
    if len(out) != len(state) or not out:
        raise TeacherImportError(f"{path} does not hold a state dict of named tensors; save the network's "
                                 "state_dict and import that.", option="checkpoint")
    return out


def _without_head(state: dict[str, Tensor]) -> tuple[dict[str, Tensor], int]:
    """(state without torchvision's classification head `fc.*`, how many tensors it had)."""
    kept = {k: v for k, v in state.items() if not k.startswith("fc.")}
    return kept, len(state) - len(kept)


def _count_prefixes(keys: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for key in keys:
        head = key.split(".", 1)[0]
        counts[head] = counts.get(head, 0) + 1
    return counts


def _few(names: list[str], k: int = 3) -> str:
    return ", ".join(names[:k]) + (", ..." if len(names) > k else "")


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0][:160] if lines else type(error).__name__
