"""Every registered backbone at every supported size, plus the registry's contract."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import torch

import ssdd_cli.models
from ssdd_cli.errors import UsageError
from ssdd_cli.models import Backbone, backbone_options, create_backbone, list_backbones

REQUIRED = {"convnet", "resnet10", "resnet18", "vgg11", "alexnet", "mobilenetv2", "vit",
            "vgg11-gap", "alexnet-gap", "mobilenetv2-torchvision"}


def test_registry_holds_the_required_architectures() -> None:
    assert REQUIRED <= set(list_backbones())
    assert list_backbones() == sorted(list_backbones())


@pytest.mark.parametrize("in_channels", [1, 3])
@pytest.mark.parametrize("image_size", [16, 32, 64])
@pytest.mark.parametrize("name", list_backbones())
def test_forward_backward(name: str, image_size: int, in_channels: int) -> None:
    torch.manual_seed(0)
    model = create_backbone(name, in_channels, image_size)
    assert isinstance(model, Backbone)
    assert (model.arch, model.in_channels, model.image_size) == (name, in_channels, image_size)
    x = torch.randn(2, in_channels, image_size, image_size)
    phi = model(x)
    assert phi.shape == (2, model.feature_dim)
    assert torch.isfinite(phi).all()
    phi.square().mean().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{name}: no gradient reached {pname}"
        assert torch.isfinite(p.grad).all(), f"{name}: non-finite gradient in {pname}"
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.mark.parametrize("name", list_backbones())
def test_config_rebuilds_the_same_network(name: str) -> None:
    model = create_backbone(name, 3, 32)
    config = json.loads(json.dumps(model.config))  # JSON-serialisable, as the store needs
    rebuilt = create_backbone(model.arch, model.in_channels, model.image_size, **config)
    assert rebuilt.config == model.config
    assert rebuilt.feature_dim == model.feature_dim
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == shapes


def test_unknown_name_lists_the_valid_ones() -> None:
    with pytest.raises(UsageError) as info:
        create_backbone("resnet1000", 3, 32)
    message = str(info.value)
    assert "resnet1000" in message
    for name in list_backbones():
        assert name in message
    assert message.count(".") == 1 and message.endswith(".")  # one sentence


def test_unknown_option_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="width"):
        create_backbone("convnet", 3, 32, width=3)
    assert backbone_options("resnet18") == ["width", "stem", "norm"]


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_bad_sizes_are_usage_errors(bad: object) -> None:
    with pytest.raises(UsageError):
        create_backbone("convnet", bad, 32)  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        create_backbone("convnet", 3, bad)  # type: ignore[arg-type]


def test_convnet_average_pooling() -> None:
    torch.manual_seed(0)
    flat = create_backbone("convnet", 1, 16, widths=(8, 16))
    avg = create_backbone("convnet", 1, 16, widths=(8, 16), pool="avg")
    avg.load_state_dict(flat.state_dict())  # the same layers: only the read-out differs
    x = torch.randn(3, 1, 16, 16)
    assert avg.feature_dim == 16 and avg.config["pool"] == "avg" and "pool" not in flat.config
    torch.testing.assert_close(avg.features(x), flat.features(x).view(3, 16, 16).mean(dim=2))
    with pytest.raises(UsageError, match="unknown ConvNet pooling"):
        create_backbone("convnet", 1, 16, pool="max")


def test_convnet_defaults_follow_krr_st() -> None:
    assert create_backbone("convnet", 3, 32).feature_dim == 8192
    assert create_backbone("convnet", 3, 32).config["widths"] == [128, 256, 512]
    assert create_backbone("convnet", 3, 64).config["widths"] == [64, 128, 256, 512]
    assert create_backbone("convnet", 3, 16).config["widths"] == [128, 256]
    assert create_backbone("convnet", 1, 64).feature_dim == 512 * 4 * 4


def test_convnet_options() -> None:
    model = create_backbone("convnet", 3, 32, widths=(8, 16), norm="in")
    assert model.feature_dim == 16 * 8 * 8
    assert isinstance(model.get_submodule("blocks.1"), torch.nn.GroupNorm)
    assert create_backbone("convnet", 3, 32, depth=2).config["widths"] == [128, 256]
    none = create_backbone("convnet", 3, 32, norm="none")
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in none.modules())
    with pytest.raises(UsageError, match="norm"):
        create_backbone("convnet", 3, 32, norm="layer")
    with pytest.raises(UsageError):
        create_backbone("convnet", 3, 32, widths=(8, 16), depth=3)
    # Pools floor odd sides as KRR-ST's `HW // 2`: 36 -> 18 -> 9 -> 4.
    assert create_backbone("convnet", 3, 36, depth=3).feature_dim == 512 * 4 * 4
    with pytest.raises(UsageError, match="at least 8"):
        create_backbone("convnet", 3, 4, depth=3)


def test_convnet_depth_follows_the_papers_resolutions() -> None:
    # KRR-ST/SSDD: 3 blocks at 32 px, 4 at 64; SSDD A.6: 5 at 128 (ImageNette), 6 at 224 (ImageNet-1K).
    depths = {s: len(create_backbone("convnet", 3, s).config["widths"]) for s in (32, 64, 128, 224)}
    assert depths == {32: 3, 64: 4, 128: 5, 224: 6}
    assert create_backbone("convnet", 3, 128).config["widths"] == [32, 64, 128, 256, 512]
    assert create_backbone("convnet", 3, 224).feature_dim == 512 * 3 * 3  # 224/2^6 = 3.5, floored


def test_resnet_width_and_vit_options() -> None:
    assert create_backbone("resnet18", 3, 32, width=32).feature_dim == 256
    assert create_backbone("mobilenetv2-torchvision", 3, 32, width_mult=0.5).feature_dim == 1280
    small = create_backbone("vit", 3, 32, embed_dim=64, depth=1, num_heads=2, pooling="mean")
    assert small(torch.randn(2, 3, 32, 32)).shape == (2, 64)
    with pytest.raises(UsageError, match="patch_size"):
        create_backbone("vit", 3, 30)
    with pytest.raises(UsageError, match="pooling"):
        create_backbone("vit", 3, 32, pooling="max")


def test_models_package_never_imports_cli_libraries_or_prints() -> None:
    # Static, so it holds whatever else the test session has imported.
    package = Path(ssdd_cli.models.__file__).parent
    for source in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                roots = {(node.module or "").split(".")[0]}
            else:
                roots = set()
            assert not roots & {"typer", "rich", "tqdm"}, f"{source.name} imports {roots}"
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id != "print", f"{source.name} prints"


def test_krr_st_alexnet_has_batchnorm_and_flat_features() -> None:
    model = create_backbone("alexnet", 3, 32)
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) == 5
    assert model.feature_dim == 192 * 4 * 4  # KRR-ST's fc takes 192·(32/8)² = 3,072 features
    gap = create_backbone("alexnet-gap", 3, 32)
    assert gap.feature_dim == 192
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in gap.modules())


def test_krr_st_vgg11_flattens_its_last_map() -> None:
    assert create_backbone("vgg11", 3, 64).feature_dim == 512 * 2 * 2
    assert create_backbone("vgg11-gap", 3, 64).feature_dim == 512
    assert create_backbone("vgg11", 3, 32).feature_dim == 512


def test_krr_st_mobilenet_expands_by_two_with_relu() -> None:
    model = create_backbone("mobilenetv2", 3, 32)
    assert not any(isinstance(m, torch.nn.ReLU6) for m in model.modules())
    # The first block expands 32 channels by 1, the second (the 24-channel stage) 16 by 2.
    blocks = [m for m in model.modules() if type(m).__name__ == "Block"]
    assert [b.conv1.out_channels for b in blocks[:2]] == [32, 32]
    assert len(blocks) == 17
    torchvision = create_backbone("mobilenetv2-torchvision", 3, 32)
    assert any(isinstance(m, torch.nn.ReLU6) for m in torchvision.modules())


@pytest.mark.parametrize(("stem", "side"), [("cifar", 34), ("cifar-same", 32), ("imagenet", 8)])
def test_resnet_stems(stem: str, side: int) -> None:
    # solo-learn's and KRR-ST's CIFAR stem pads its 3x3 conv by 2, so 32 px becomes 34.
    model = create_backbone("resnet18", 3, 32, stem=stem)
    assert model.stem(torch.zeros(1, 3, 32, 32)).shape[-1] == side
    assert create_backbone("resnet18", 3, 32).config["stem"] == "cifar"
    with pytest.raises(UsageError, match="stem"):
        create_backbone("resnet18", 3, 32, stem="tiny")
