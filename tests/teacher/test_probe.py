"""The preset digits teacher learns something: it beats a random network of the same architecture.

Slow (the full preset schedule, about a minute of CPU): run with `pytest -m slow`.
Measured (CPU, one thread, seed 0, digits test split of 359 images, preset: 50 epochs),
random → teacher: k-NN 0.925 → 0.964, linear probe 0.961 → 0.992; final loss 157.3.
(With 40 epochs: 0.961 and 0.978.)
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssdd_cli.data import load_source, normalize
from ssdd_cli.presets import get_preset
from ssdd_cli.teacher.cache import compute_features
from ssdd_cli.teacher.trainer import TeacherConfig, build_teacher, train_teacher


def knn_accuracy(train: Tensor, train_y: Tensor, test: Tensor, test_y: Tensor, k: int = 20) -> float:
    """Cosine k-NN with exp(sim / 0.07) vote weights (the InstDisc / solo-learn protocol)."""
    sim = F.normalize(test, dim=1) @ F.normalize(train, dim=1).T
    w, idx = sim.topk(k, dim=1)
    classes = int(train_y.max()) + 1
    votes = torch.zeros(len(test), classes).scatter_add_(1, train_y[idx], (w / 0.07).exp())
    return float((votes.argmax(1) == test_y).float().mean())


def linear_accuracy(train: Tensor, train_y: Tensor, test: Tensor, test_y: Tensor) -> float:
    """Multinomial logistic regression on standardised frozen features (L-BFGS, light L2)."""
    mu, sd = train.mean(0), train.std(0) + 1e-6
    a, b = (train - mu) / sd, (test - mu) / sd
    head = nn.Linear(a.shape[1], int(train_y.max()) + 1).double()
    opt = torch.optim.LBFGS(head.parameters(), max_iter=500, line_search_fn="strong_wolfe")
    a64 = a.double()

    def closure() -> Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(head(a64), train_y) + 1e-4 * head.weight.square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    return float((head(b.double()).argmax(1) == test_y).float().mean())


@pytest.mark.slow
def test_digits_teacher_beats_a_random_network() -> None:
    data = load_source("digits")
    config = TeacherConfig.from_preset(get_preset("digits").teacher)
    train_x = normalize(data.train, data.mean, data.std)
    test_x = normalize(data.test, data.mean, data.std)
    assert data.train_labels is not None and data.test_labels is not None
    ytr, yte = data.train_labels, data.test_labels

    def probes(model: nn.Module) -> tuple[float, float]:
        ftr = compute_features(model, train_x)  # type: ignore[arg-type]
        fte = compute_features(model, test_x)  # type: ignore[arg-type]
        return knn_accuracy(ftr, ytr, fte, yte), linear_accuracy(ftr, ytr, fte, yte)

    random_net, _ = build_teacher(config, data.channels, data.resolution)
    random_knn, random_lin = probes(random_net)
    result = train_teacher(data.train, data.mean, data.std, config)
    teacher_knn, teacher_lin = probes(result.backbone)
    print(f"k-NN {random_knn:.3f} -> {teacher_knn:.3f}; linear {random_lin:.3f} -> {teacher_lin:.3f};"
          f" final loss {result.final_loss:.1f}; {result.seconds:.0f} s")
    # Observed margins +0.039 (k-NN) and +0.031 (linear); assert about half of each.
    assert teacher_knn > random_knn + 0.02
    assert teacher_lin > random_lin + 0.015
