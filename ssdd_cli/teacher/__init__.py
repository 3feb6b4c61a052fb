"""The self-supervised teacher: Barlow Twins loss, projector, augmentation, trainer and caches.

    config = TeacherConfig.from_preset(get_preset("digits").teacher)
    result = train_teacher(images.source, images.mean, images.std, config, device="cpu")
    save_teacher("teacher.safetensors", result, source="digits", mean=images.mean, std=images.std)
    backbone, meta = load_teacher("teacher.safetensors")
"""

from ssdd_cli.teacher.augment import AugmentConfig, augment, two_views
from ssdd_cli.teacher.cache import VIEWS, compute_features, teacher_features
from ssdd_cli.teacher.imports import TeacherImportError, import_teacher, imported_metadata, read_checkpoint
from ssdd_cli.teacher.loss import barlow_twins_loss, cross_correlation
from ssdd_cli.teacher.projector import Projector
from ssdd_cli.teacher.provide import default_cache_root, get_or_train_teacher, resolve_teacher, teacher_path
from ssdd_cli.teacher.store import load_teacher, save_teacher, teacher_metadata, weights_sha256
from ssdd_cli.teacher.trainer import TeacherConfig, TeacherResult, build_teacher, train_teacher

__all__ = [
    "VIEWS",
    "AugmentConfig",
    "Projector",
    "TeacherConfig",
    "TeacherImportError",
    "TeacherResult",
    "augment",
    "barlow_twins_loss",
    "build_teacher",
    "compute_features",
    "cross_correlation",
    "default_cache_root",
    "get_or_train_teacher",
    "import_teacher",
    "imported_metadata",
    "load_teacher",
    "read_checkpoint",
    "resolve_teacher",
    "save_teacher",
    "teacher_features",
    "teacher_metadata",
    "teacher_path",
    "train_teacher",
    "two_views",
    "weights_sha256",
]
