"""ssdd: self-supervised dataset distillation into versioned `.ssdd` artifacts.

The Python API (docs/python-api.md), loaded on first use so that `import ssdd_cli` (and the
command line's start) stays light:

    import ssdd_cli as ssdd

    ssdd.train_teacher("digits", "teacher.safetensors")       # -> the teacher Backbone
    art = ssdd.distill("digits", "digits.ssdd", steps=300)   # -> Artifact
    art = ssdd.load_artifact("digits.ssdd")
    pairs = art.dataset()                                     # torch Dataset of (image, target)
    net = ssdd.pretrain(art, "convnet.safetensors")           # -> Backbone (nn.Module)
    report = ssdd.evaluate(net, "digits", protocol="knn")     # -> EvalReport
    weights = ssdd.export_state_dict(net)                     # plain {name: tensor}
    ssdd.tune_allocator()         # opt in to the CLI's malloc tuning (a process-wide change)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from ssdd_cli.api import (
        Artifact,
        ArtifactDataset,
        backbone_spec,
        distill,
        evaluate,
        export_state_dict,
        load_artifact,
        pretrain,
        train_teacher,
    )
    from ssdd_cli.kit.allocator import tune_allocator

_API = ("Artifact", "ArtifactDataset", "backbone_spec", "distill", "evaluate", "export_state_dict",
        "load_artifact", "pretrain", "train_teacher")
__all__ = ["Artifact", "ArtifactDataset", "__version__", "backbone_spec", "distill", "evaluate",
           "export_state_dict", "load_artifact", "pretrain", "train_teacher", "tune_allocator"]


def __getattr__(name: str) -> Any:
    if name == "tune_allocator":  # torch-free: the command line applies it before loading torch
        from ssdd_cli.kit.allocator import tune_allocator

        return tune_allocator
    if name in _API:
        from ssdd_cli import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
