"""Approximation networks Q_a (SSDD §3.3): predict the representation shift of augmentation τ_a.

After the outer loop, Q_a: ℝ^V → ℝ^h → ℝ^V is fitted by MSE to C^y_a − C^y; the artifact stores
Q_a and drops C^y_a, and targets are rebuilt as Ỹ^Q = [Y_s, Y_s + Q_1(C^y) B^y, …].
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ssdd_cli.errors import UsageError
from ssdd_cli.kit.schedules import cosine, set_lr
from ssdd_cli.kit.seeding import build_seeded
from ssdd_cli.progress import Callback, ProgressEvent, silent


class ApproxNet(nn.Module):
    """Q_a(c) = W_1 relu(W_0 c + b_0) + b_1, stored as `approx.{a}.0.*` and `approx.{a}.1.*`."""

    def __init__(self, V: int, hidden: int) -> None:
        super().__init__()
        self.fc0 = nn.Linear(V, hidden)
        self.fc1 = nn.Linear(hidden, V)

    def forward(self, c: Tensor) -> Tensor:
        """c: (m, V) coefficients -> (m, V) predicted shift."""
        return self.fc1(torch.relu(self.fc0(c)))

    def export(self, a: int) -> dict[str, Tensor]:
        """The artifact's tensors `approx.{a}.{0,1}.{weight,bias}` of this Q_a."""
        return {f"approx.{a}.{i}.{kind}": getattr(layer, kind).detach()
                for i, layer in enumerate((self.fc0, self.fc1)) for kind in ("weight", "bias")}

    @classmethod
    def from_tensors(cls, tensors: dict[str, Tensor], a: int) -> ApproxNet:
        w0, w1 = tensors[f"approx.{a}.0.weight"], tensors[f"approx.{a}.1.weight"]
        net = cls(V=w0.shape[1], hidden=w0.shape[0])
        with torch.no_grad():
            net.fc0.weight.copy_(w0)
            net.fc0.bias.copy_(tensors[f"approx.{a}.0.bias"])
            net.fc1.weight.copy_(w1)
            net.fc1.bias.copy_(tensors[f"approx.{a}.1.bias"])
        return net


STAGE = "approx"
REPORT_EVERY = 100


@dataclass(frozen=True)
class ApproxConfig:
    """Q_a's hidden width, and its fit: `steps` full-batch Adam steps at `lr` (cosine)."""

    hidden: int = 4
    steps: int = 3000
    lr: float = 1e-2

    def __post_init__(self) -> None:
        if self.hidden < 1:
            raise UsageError(f"the approximation networks need a hidden width of at least 1, got "
                             f"{self.hidden}.", option="hidden")
        if self.steps < 0:
            raise UsageError(f"Q_a's fit cannot take a negative number of steps, got {self.steps}.",
                             option="approx_steps")


@dataclass(frozen=True)
class ApproxFit:
    """The fitted Q_a and their MSE on C^y_a − C^y, per view, before and after fitting."""

    nets: list[ApproxNet]
    mse_before: list[float]  # MSE of predicting no shift (the "Same" baseline of Table 11)
    mse_after: list[float]


def fit_approx(c_y: Tensor, c_y_aug: Tensor, config: ApproxConfig, generator: torch.Generator,
               callback: Callback = silent) -> ApproxFit:
    """Fit one Q_a per augmentation on the shift C^y_a − C^y by full-batch Adam on the MSE.

    c_y: (m, V); c_y_aug: (A, m, V). The paper does not give Q_a's optimiser; Adam with a cosine
    schedule over `steps` full-batch steps converges on these tiny problems. Reports a
    `ProgressEvent("approx", ...)` every `REPORT_EVERY` steps and at the end of each Q_a.
    """
    c_y = c_y.detach()
    n_aug = c_y_aug.shape[0]
    nets, before, after = [], [], []
    for a in range(n_aug):
        shift = (c_y_aug[a] - c_y).detach()
        net = build_seeded(lambda: ApproxNet(c_y.shape[1], config.hidden), generator).to(c_y.device)
        opt = torch.optim.Adam(net.parameters(), lr=config.lr)
        before.append(float(shift.pow(2).mean()))
        for step in range(config.steps):
            opt.zero_grad(set_to_none=True)
            loss = (net(c_y) - shift).pow(2).mean()
            loss.backward()
            set_lr(opt, config.lr, cosine(step, config.steps))
            opt.step()
            if (step + 1) % REPORT_EVERY == 0 or step + 1 == config.steps:
                callback(ProgressEvent(STAGE, a * config.steps + step + 1, n_aug * config.steps,
                                       {"view": a + 1, "mse": float(loss.detach())}))
        with torch.no_grad():
            after.append(float((net(c_y) - shift).pow(2).mean()))
        nets.append(net.eval())
    return ApproxFit(nets, before, after)


def approx_targets(c_y: Tensor, repr_bases: Tensor, nets: list[ApproxNet]) -> Tensor:
    """Ỹ^Q = [Y_s, Y_s + Q_1(C^y) B^y, …, Y_s + Q_A(C^y) B^y]: (m·(A+1), d_y), view-major.

    c_y: (m, V); repr_bases: (V, d_y).
    """
    coeffs = [c_y] + [c_y + net(c_y) for net in nets]
    return torch.cat(coeffs, dim=0) @ repr_bases
