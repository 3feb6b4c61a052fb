from __future__ import annotations

import torch
from torch import Tensor

from ssdd_cli.distill.augment import get_augmentation
from ssdd_cli.distill.inputs import DistillInputs, TeacherTargets
from ssdd_cli.distill.methods.ssdd import init_parameterization
from ssdd_cli.distill.param import UncenteredPCA, downsample, upsample


def test_uncentered_pca_matches_svd() -> None:
    x = torch.randn(100, 20, generator=torch.Generator().manual_seed(0)) + 3.0  # far from centred
    pca = UncenteredPCA(5).fit(x)
    _, _, vh = torch.linalg.svd(x.double(), full_matrices=False)
    for a, b in zip(pca.components_, vh[:5], strict=True):
        assert abs(abs(float(a.double() @ b)) - 1) < 1e-5  # same directions up to sign
    torch.testing.assert_close(pca.components_ @ pca.components_.T, torch.eye(5), atol=1e-5, rtol=0)


def test_init_reproduces_projected_images(source: Tensor, teacher) -> None:  # type: ignore[no-untyped-def]
    g = torch.Generator().manual_seed(0)
    feats = teacher(source)
    inputs = DistillInputs(source, TeacherTargets(teacher, source, feats.shape[1]), g)
    p = init_parameterization(inputs, m=5, U=30, V=6, scale=2, augmentation=get_augmentation("rotate"))
    idx = torch.randperm(source.shape[0], generator=torch.Generator().manual_seed(0))[:5]
    low = downsample(source, 2).flatten(1)
    basis = UncenteredPCA(30).fit(low).components_
    projected = upsample(((low[idx] @ basis.T) @ basis).view(5, 1, 8, 8), 2)
    torch.testing.assert_close(p.images(), projected, atol=1e-4, rtol=1e-4)
    # With every basis kept, D(C^x B^x) is the (down- then up-sampled) image itself: the mean is
    # not lost (uncentred bases, nothing dropped).
    inputs = DistillInputs(source, TeacherTargets(teacher, source, feats.shape[1]), torch.Generator().manual_seed(0))
    full = init_parameterization(inputs, m=5, U=64, V=12, scale=2, augmentation=get_augmentation("rotate"))
    torch.testing.assert_close(full.images(), upsample(downsample(source[idx], 2), 2), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(full.targets()[:5], feats[idx], atol=1e-4, rtol=1e-4)
    # C^y_a are the projections of g(τ_a(X_s)).
    rot = get_augmentation("rotate").view(full.images(), 1)
    torch.testing.assert_close(full.targets()[10:15], teacher(rot), atol=1e-4, rtol=1e-4)
    assert p.targets().shape == (20, 12)
    x_s, y_s = p.support()  # X̃_s and Ỹ_s: the m images and their 3 rotations, view-major
    assert x_s.shape == (20, 1, 16, 16) and y_s.shape == (20, 12)
    torch.testing.assert_close(x_s[5:10], get_augmentation("rotate").view(p.images(), 0))
