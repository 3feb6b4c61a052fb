from __future__ import annotations

import pytest
import torch

from ssdd_cli.distill.augment import get_augmentation, list_augmentations
from ssdd_cli.errors import UsageError


def test_registry() -> None:
    assert set(list_augmentations()) == {"rotate", "jigsaw", "crop", "none"}
    assert [get_augmentation(n).A for n in ("rotate", "jigsaw", "crop", "none")] == [3, 3, 5, 0]
    with pytest.raises(UsageError, match="rotate"):
        get_augmentation("mixup")


def test_rotations_invert_and_compose() -> None:
    x = torch.randn(2, 3, 8, 8)
    rot = get_augmentation("rotate")
    r90 = rot.view(x, 0)
    assert torch.equal(torch.rot90(r90, -1, dims=(2, 3)), x)
    assert torch.equal(rot.view(r90, 0), rot.view(x, 1))  # 90∘90 = 180
    assert torch.equal(rot.view(x, 2), torch.rot90(x, -1, dims=(2, 3)))  # 270 = −90
    # Hand-built: a 2×2 image [[1, 2], [3, 4]] rotated 90° counter-clockwise is [[2, 4], [1, 3]].
    img = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 1, 2, 2)
    assert torch.equal(rot.view(img, 0).view(2, 2), torch.tensor([[2.0, 4.0], [1.0, 3.0]]))


def test_jigsaw_swaps_are_involutions_and_match_hand_example() -> None:
    jig = get_augmentation("jigsaw")
    x = torch.randn(2, 1, 6, 6)
    for a in range(3):
        assert torch.equal(jig.view(jig.view(x, a), a), x)
    img = torch.arange(16.0).view(1, 1, 4, 4)
    lr = jig.view(img, 0).view(4, 4)
    assert torch.equal(lr[:, :2], img.view(4, 4)[:, 2:]) and torch.equal(lr[:, 2:], img.view(4, 4)[:, :2])
    tb = jig.view(img, 1).view(4, 4)
    assert torch.equal(tb[:2], img.view(4, 4)[2:])


def test_crop_matches_hand_built_example() -> None:
    crop = get_augmentation("crop")
    x = torch.randn(1, 3, 32, 32)
    # top-left 20×20 patch resized back to 32×32
    want = torch.nn.functional.interpolate(x[:, :, :20, :20], size=(32, 32), mode="bilinear",
                                           align_corners=False)
    assert torch.allclose(crop.view(x, 0), want)
    centre = crop.view(x, 4)
    want_c = torch.nn.functional.interpolate(x[:, :, 6:26, 6:26], size=(32, 32), mode="bilinear",
                                             align_corners=False)
    assert torch.allclose(centre, want_c)
    # A constant image stays constant under every crop.
    const = torch.full((1, 1, 32, 32), 0.7)
    assert torch.allclose(crop.expand(const), torch.full((6, 1, 32, 32), 0.7))


def test_expand_is_view_major_and_differentiable() -> None:
    x = torch.randn(3, 1, 4, 4, requires_grad=True)
    out = get_augmentation("rotate").expand(x)
    assert out.shape == (12, 1, 4, 4)
    assert torch.equal(out[:3], x) and torch.equal(out[3:6], torch.rot90(x, 1, dims=(2, 3)))
    out.sum().backward()
    assert torch.equal(x.grad, torch.full_like(x, 4.0))
