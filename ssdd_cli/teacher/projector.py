"""The Barlow Twins projector: a 3-layer MLP on top of the backbone's features."""

from __future__ import annotations

from torch import Tensor, nn


class Projector(nn.Module):
    """Linear-BN-ReLU, Linear-BN-ReLU, Linear: (B, in_dim) → (B, out).

    The paper uses 8192-8192-8192 on ImageNet and 2048 wide on CIFAR (solo-learn). `bias`:
    whether the Linear layers have biases; the Barlow Twins reference code has none (the
    BatchNorm that follows makes a bias redundant, and the loss standardises the last output over
    the batch anyway), solo-learn's projector (the SSDD paper's teacher) has them.
    """

    def __init__(self, in_dim: int, hidden: int = 2048, out: int = 2048, *, bias: bool = False) -> None:
        super().__init__()
        self.in_dim, self.hidden, self.out = in_dim, hidden, out
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden, bias=bias),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden, bias=bias),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, out, bias=bias),
        )

    def forward(self, h: Tensor) -> Tensor:
        """h: (B, in_dim) backbone features → z: (B, out) embeddings."""
        out: Tensor = self.net(h)
        return out
