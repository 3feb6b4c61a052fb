import torch

from ssdd_cli.train.linear import LinearProbe, LinearProbeConfig, accuracy
from ssdd_cli.train.regression import LinearMap, mean_squared_error


def test_linear_probe_separates_blobs() -> None:
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(3).repeat(60)
    x = 100.0 * (torch.randn(3, 20, generator=g)[labels] + 0.3 * torch.randn(180, 20, generator=g))
    probe = LinearProbe(LinearProbeConfig(epochs=20, batch_size=64))
    fitted = probe.fit(x[:120], labels[:120], 3, generator=torch.Generator().manual_seed(1))
    assert fitted is probe
    assert probe.weight_.shape == (3, 20)
    assert accuracy(probe.predict(x[120:]), labels[120:]) > 0.95


def test_linear_probe_seed_only_orders_batches() -> None:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(50, 5, generator=g), torch.randint(0, 2, (50,), generator=g)
    cfg = LinearProbeConfig(epochs=3, batch_size=50)  # full batch: order does not matter
    a = LinearProbe(cfg).fit(x, y, 2, generator=torch.Generator().manual_seed(1))
    b = LinearProbe(cfg).fit(x, y, 2, generator=torch.Generator().manual_seed(2))
    assert torch.allclose(a.weight_, b.weight_, atol=1e-6)


def test_linear_map_recovers_affine_map_primal_and_dual() -> None:
    g = torch.Generator().manual_seed(0)
    for n, d in ((200, 10), (30, 80)):
        w = torch.randn(d, 4, generator=g)
        x = torch.randn(n + 20, d, generator=g)
        y = x @ w + 3.0
        m = LinearMap().fit(x[:n], y[:n], x[n:n + 10], y[n:n + 10])
        assert m.ridge_ in m.ridges
        if n > d:  # determined: the exact map, whatever ridge validation picked
            assert mean_squared_error(m.predict(x[n + 10:]), y[n + 10:]) < 1e-6
        else:  # underdetermined, no validation: the smallest ridge interpolates the train set
            plain = LinearMap().fit(x[:n], y[:n])
            assert plain.ridge_ == min(plain.ridges)
            assert mean_squared_error(plain.predict(x[:n]), y[:n]) < 1e-3


def test_probe_uses_raw_features_unless_asked_to_standardise() -> None:
    # SSDD A.1 and KRR-ST's linear_eval.py train the head on the raw features.
    g = torch.Generator().manual_seed(0)
    x, y = 5.0 + 3.0 * torch.randn(40, 4, generator=g), torch.randint(0, 2, (40,), generator=g)
    raw = LinearProbe(LinearProbeConfig(epochs=2)).fit(x, y, 2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(raw.mean_, torch.zeros(4)) and torch.equal(raw.scale_, torch.ones(4))
    std = LinearProbe(LinearProbeConfig(epochs=2, standardize=True)).fit(
        x, y, 2, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(std.mean_, x.mean(dim=0))
    # Standardised, the probe's logits do not depend on an affine rescaling of the features.
    scaled = LinearProbe(LinearProbeConfig(epochs=2, standardize=True)).fit(
        10 * x + 1, y, 2, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(scaled.decision_function(10 * x + 1), std.decision_function(x), atol=1e-4)
