"""The Barlow Twins projector: a 3-layer MLP on top of the backbone's features."""

from __future__ import annotations

from torch import Tensor, nn


class Projector(nn.Module):
    """Linear-BN-ReLU, Linear-BN-ReLU, Linear: (B, in_dim) → (B, out).

    The paper uses 8192-8192-8192 on ImageNet and 2048 wide on CIFAR (solo-learn); every Linear
    is bias-free as in the reference code (the BatchNorm that follows makes a bias redundant, and
    the loss standardises the last layer's output over the batch anyway).
    """

    def __init__(self, in_dim: int, hidden: int = 2048, out: int = 2048) -> None:
        super().__init__()
        self.in_dim, self.hidden, self.out = in_dim, hidden, out
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden, bias=False),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden, bias=False),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, out, bias=False),
        )

    def forward(self, h: Tensor) -> Tensor:
        """h: (B, in_dim) backbone features → z: (B, out) embeddings."""
        out: Tensor = self.net(h)
        return out
