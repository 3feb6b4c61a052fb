import pytest
import torch

from ssdd_cli.train.cka import linear_cka


def _reference_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Kornblith et al. (2019), HSIC with linear kernels, written out in float64."""
    x = x.double()
    y = y.double()
    n = x.shape[0]
    h = torch.eye(n, dtype=torch.float64) - torch.full((n, n), 1.0 / n, dtype=torch.float64)
    k = h @ (x @ x.T) @ h
    l_ = h @ (y @ y.T) @ h
    return float((k * l_).sum() / ((k * k).sum().sqrt() * (l_ * l_).sum().sqrt()))


@pytest.mark.parametrize("n,d1,d2", [(50, 7, 3), (20, 40, 64), (30, 1, 90)])
def test_matches_reference(n: int, d1: int, d2: int) -> None:
    g = torch.Generator().manual_seed(n + d1)
    x = torch.randn(n, d1, generator=g)
    y = x[:, :1] * torch.randn(1, d2, generator=g) + 0.5 * torch.randn(n, d2, generator=g)
    assert linear_cka(x, y) == pytest.approx(_reference_cka(x, y), abs=1e-10)


def test_chunked_paths_agree() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1100, 3, generator=g)  # feature path
    y = torch.randn(1100, 5, generator=g) + x[:, :1]
    a = linear_cka(x, y)
    xw = torch.randn(60, 2500, generator=g)  # Gram path with a chunked feature side
    yw = xw[:, :40] + torch.randn(60, 40, generator=g)
    assert a == pytest.approx(_reference_cka(x, y), abs=1e-10)
    assert linear_cka(xw, yw) == pytest.approx(_reference_cka(xw, yw), abs=1e-10)


def test_invariances_and_range() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 6, generator=g)
    y = torch.tanh(x @ torch.randn(6, 9, generator=g)) + 0.3 * torch.randn(40, 9, generator=g)
    q, _ = torch.linalg.qr(torch.randn(9, 9, generator=g, dtype=torch.float64))
    base = linear_cka(x, y)
    assert 0.0 <= base <= 1.0
    assert linear_cka(x, (y.double() @ q).float()) == pytest.approx(base, abs=1e-5)
    assert linear_cka(17.0 * x, y) == pytest.approx(base, abs=1e-6)
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-6)
    assert linear_cka(x, torch.ones(40, 3)) == 0.0
