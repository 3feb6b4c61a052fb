"""The chunked support side: the same loss and gradient as one graph, and no graph kept over M."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from torch import Tensor

from ssdd_cli.distill.augment import get_augmentation
from ssdd_cli.distill.krr import squared_error, with_bias_column
from ssdd_cli.distill.param import reconstruct_images
from ssdd_cli.distill.support import support_prediction
from ssdd_cli.models import create_backbone
from tests.distill.test_krr import reference_loss

M_IMAGES = 40  # m; with rotate (A = 3) the support set has M = 160 rows, d = 8·4·4 + 1 = 129 features


@pytest.fixture
def setup() -> Iterator[dict[str, Tensor | torch.nn.Module]]:
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    net = create_backbone("convnet", 1, 16, widths=(4, 8)).eval()
    for mod in net.modules():  # non-trivial running statistics: eval-mode BatchNorm is then a real map
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.5, 0.5, generator=g)
            mod.running_var.uniform_(0.5, 2.0, generator=g)
    net.requires_grad_(False)
    yield {"net": net,
           "coeffs": torch.randn(M_IMAGES, 12, generator=g),  # C^x
           "bases": torch.randn(12, 1, 8, 8, generator=g) / 8,  # B^x at half resolution
           "y_s": torch.randn(4 * M_IMAGES, 6, generator=g),
           "x_t": torch.randn(30, 1, 16, 16, generator=g),
           "y_t": torch.randn(30, 6, generator=g)}


def loss_and_grads(s: dict, *, chunk: int, form: str, dtype: torch.dtype = torch.float32) -> tuple[Tensor, ...]:  # type: ignore[type-arg]
    net = s["net"].to(dtype)
    coeffs, bases, y_s = (s[k].to(dtype).requires_grad_(True) for k in ("coeffs", "bases", "y_s"))
    x_s = get_augmentation("rotate").expand(reconstruct_images(coeffs, bases, 2))  # (160, 1, 16, 16), with a graph

    def phi(x: Tensor) -> Tensor:
        return with_bias_column(net.features(x))

    phi_t = phi(s["x_t"].to(dtype))
    loss = squared_error(s["y_t"].to(dtype), support_prediction(phi_t, phi, x_s, y_s, ridge=1e-3, chunk=chunk,
                                                                form=form))
    return (loss.detach(), *torch.autograd.grad(loss, (coeffs, bases, y_s)))


@pytest.mark.parametrize("form", ["dual", "primal"])
def test_chunked_step_has_the_one_graph_gradient(setup: dict, form: str) -> None:  # type: ignore[type-arg]
    whole = loss_and_grads(setup, chunk=10_000, form=form)
    reference = loss_and_grads(setup, chunk=10_000, form=form, dtype=torch.float64)
    for chunk in (7, 64):  # ragged and even chunks of the 160 rows
        chunked = loss_and_grads(setup, chunk=chunk, form=form)
        for a, b, ref in zip(chunked, whole, reference, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(a.double(), ref, rtol=1e-3, atol=1e-4)


def test_one_graph_matches_the_float64_equation(setup: dict) -> None:  # type: ignore[type-arg]
    """The float64 run of the pipeline against eq. 3 written out (the reference of the test above)."""
    net = setup["net"].double()
    x_s = get_augmentation("rotate").expand(reconstruct_images(setup["coeffs"].double(), setup["bases"].double(), 2))
    phi_s, phi_t = (with_bias_column(net.features(x)) for x in (x_s, setup["x_t"].double()))
    want = reference_loss(phi_t, setup["y_t"], phi_s, setup["y_s"], 1e-3)
    for form in ("dual", "primal"):
        got = loss_and_grads(setup, chunk=7, form=form, dtype=torch.float64)[0]
        torch.testing.assert_close(got, want)


def saved_bytes(s: dict, chunk: int, form: str) -> int:  # type: ignore[type-arg]
    """Bytes autograd saves for the backward while the support side's forward runs."""
    total = 0

    def pack(t: Tensor) -> Tensor:
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    x_s = torch.randn(4 * M_IMAGES, 1, 16, 16, requires_grad=True)
    y_s = s["y_s"].clone().requires_grad_(True)

    def phi(x: Tensor) -> Tensor:
        return with_bias_column(s["net"].features(x))

    with torch.no_grad():
        phi_t = phi(s["x_t"])
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        support_prediction(phi_t, phi, x_s, y_s, ridge=1e-3, chunk=chunk, form=form)
    return total


@pytest.mark.parametrize("form", ["dual", "primal"])
def test_chunked_forward_keeps_no_network_graph(setup: dict, form: str) -> None:  # type: ignore[type-arg]
    one_graph, chunked = saved_bytes(setup, 10_000, form), saved_bytes(setup, 16, form)
    inputs = 4 * M_IMAGES * (16 * 16 + 6) * 4  # X̃_s and Ỹ_s themselves, float32
    solve = 2 * 129 * max(129, 4 * M_IMAGES) * 8 * 4  # the solve's float64 operands, a generous bound
    assert one_graph > 4 * inputs  # the network's activations of all 160 rows
    assert chunked <= inputs + solve
