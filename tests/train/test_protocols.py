import json
from typing import Any

import pytest
import torch

from ssdd_cli.data import ImageSet, load_source, normalize
from ssdd_cli.errors import DataError, UsageError
from ssdd_cli.train.evaluate import evaluate
from ssdd_cli.train.linear import LinearProbeConfig
from ssdd_cli.train.protocols import (
    FinetuneConfig,
    few_shot_indices,
    get_protocol,
    list_protocols,
)

from .conftest import Identity, subset

CPU = torch.device("cpu")
FAST = {"linear": LinearProbeConfig(epochs=20), "finetune": FinetuneConfig(steps=3, batch_size=32)}


def test_registry_lists_the_protocols() -> None:
    assert {"align", "finetune", "knn", "linear"} <= set(list_protocols())
    with pytest.raises(UsageError, match="choose one of: align"):
        get_protocol("nope")
    with pytest.raises(TypeError, match="takes a LinearProbeConfig"):
        evaluate(Identity(1, 16), subset(load_source("digits"), 20, 5, 5), "linear", config=FinetuneConfig())


def test_linear_probe_on_raw_digit_pixels(digits: ImageSet, identity: Identity) -> None:
    """Sanity check of the protocol itself: logistic regression on pixels is ~95% on digits
    (95.3% with the default 100 epochs; 30 keep the test fast on 2 shared cores)."""
    report = evaluate(identity, digits, "linear", device=CPU, config=LinearProbeConfig(epochs=30))
    (acc,) = report.metrics
    assert acc.name == "accuracy"
    assert acc.mean >= 0.90


@pytest.mark.parametrize("protocol,shots", [("linear", None), ("linear", 2), ("knn", None),
                                            ("knn", 3), ("finetune", None)])
def test_label_protocols_in_range(tiny_digits: ImageSet, tiny_convnet: torch.nn.Module,
                                  protocol: str, shots: int | None) -> None:
    before = {k: v.clone() for k, v in tiny_convnet.state_dict().items()}
    report = evaluate(tiny_convnet, tiny_digits, protocol, seeds=2, shots=shots, device=CPU,
                      config=FAST.get(protocol))
    (acc,) = report.metrics
    assert len(acc.values) == 2 and report.seeds == (0, 1)
    assert all(0.0 <= v <= 1.0 for v in acc.values)
    assert acc.mean > 0.15  # above chance (0.1) even for a random tiny network
    assert acc.std >= 0.0
    after = tiny_convnet.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the backbone is untouched
    json.dumps(report.to_dict())


def test_align_with_itself_is_perfect(tiny_digits: ImageSet, tiny_convnet: torch.nn.Module) -> None:
    # the BatchNorm rule recomputes the statistics of both networks alike: still itself
    recalibrated = evaluate(tiny_convnet, tiny_digits, "align", teacher=tiny_convnet, device=CPU)
    assert recalibrated.metrics[0].mean == pytest.approx(1.0, abs=1e-5)
    report = evaluate(tiny_convnet, tiny_digits, "align", teacher=tiny_convnet, device=CPU, batchnorm="stored")
    metrics = {m.name: m for m in report.metrics}
    assert metrics["cka"].mean == pytest.approx(1.0, abs=1e-5)
    with torch.no_grad():
        x = normalize(tiny_digits.test, tiny_digits.mean, tiny_digits.std)
        spread = float(tiny_convnet.features(x).var(dim=0).mean())
    # 200 train images < 256 dims: the fitted map reproduces the test features only up to
    # the part outside the train span, so "near 0" means a small fraction of their variance
    assert metrics["mse"].mean < 0.05 * spread


def test_align_against_another_network(tiny_digits: ImageSet, tiny_convnet: torch.nn.Module,
                                       identity: Identity) -> None:
    report = evaluate(tiny_convnet, tiny_digits, "align", teacher=identity, device=CPU, seeds=2)
    metrics = {m.name: m for m in report.metrics}
    assert 0.0 <= metrics["cka"].mean <= 1.0
    assert metrics["cka"].std == 0.0  # deterministic
    assert metrics["mse"].mean >= 0.0


def test_few_shot_indices() -> None:
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    idx = few_shot_indices(labels, 2, torch.Generator().manual_seed(0))
    assert torch.bincount(labels[idx]).tolist() == [2, 2, 2]
    again = few_shot_indices(labels, 2, torch.Generator().manual_seed(0))
    assert torch.equal(idx, again)
    with pytest.raises(UsageError, match="choose 3 shots or fewer"):
        few_shot_indices(labels, 4, torch.Generator())


def test_user_errors(tiny_digits: ImageSet, tiny_convnet: torch.nn.Module) -> None:
    with pytest.raises(UsageError, match="compares with a teacher") as err:
        evaluate(tiny_convnet, tiny_digits, "align", device=CPU)
    assert err.value.option == "teacher"
    with pytest.raises(UsageError, match="do not apply"):
        evaluate(tiny_convnet, tiny_digits, "align", shots=1, teacher=tiny_convnet, device=CPU)
    with pytest.raises(UsageError, match="3-channel images but target"):
        evaluate(Identity(3, 16), tiny_digits, "knn", device=CPU)
    with pytest.raises(UsageError, match="load it at resolution 8"):
        evaluate(Identity(1, 8), tiny_digits, "knn", device=CPU)
    unlabelled = ImageSet("npz:x", tiny_digits.train, None, tiny_digits.val, None,
                          tiny_digits.test, None, tiny_digits.mean, tiny_digits.std, None)
    with pytest.raises(DataError, match="use the align protocol"):
        evaluate(tiny_convnet, unlabelled, "knn", device=CPU)
    assert evaluate(tiny_convnet, subset(unlabelled, 50, 10, 20), "align",
                    teacher=tiny_convnet, device=CPU).metrics[0].name == "cka"


def test_finetune_pads_4_px_as_krr_st(tiny_digits: ImageSet, tiny_convnet: torch.nn.Module,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import ssdd_cli.train.protocols.finetune as finetune

    seen: list[int] = []
    real = finetune.random_crop_flip

    def spy(x: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        seen.append(kwargs["padding"])
        return real(x, **kwargs)

    monkeypatch.setattr(finetune, "random_crop_flip", spy)
    evaluate(tiny_convnet, tiny_digits, "finetune", config=FinetuneConfig(steps=2, batch_size=16))
    assert seen == [4, 4]  # KRR-ST's RandomCrop(size, padding=4), at any resolution
    evaluate(tiny_convnet, tiny_digits, "finetune", config=FinetuneConfig(steps=1, batch_size=16, padding=None))
    assert seen[-1] == tiny_digits.resolution // 8


def test_a_limited_label_probe_trains_on_a_stratified_share_drawn_by_seed(digits: ImageSet,
                                                                          identity: Identity) -> None:
    from ssdd_cli.train.protocols.base import EvalContext

    ctx = EvalContext(identity, digits, CPU, fraction=0.1)
    labels = digits.train_labels
    assert labels is not None
    idx = ctx.train_indices(0)
    assert len(idx) == round(0.1 * len(labels))
    share = torch.bincount(labels[idx], minlength=10).float() / torch.bincount(labels, minlength=10)
    assert bool(((share - 0.1).abs() < 0.02).all())  # every class gives its share
    assert torch.equal(idx, ctx.train_indices(0)) and not torch.equal(idx, ctx.train_indices(1))
    report = evaluate(identity, digits, "linear", fraction=0.1, seeds=2, device=CPU,
                      config=LinearProbeConfig(epochs=30))
    assert report.config["fraction"] == 0.1 and len(report.metrics[0].values) == 2
    assert 0.5 < report.metrics[0].mean < 0.99  # fewer labels than the full probe's ≥ 0.90, still well above chance


@pytest.mark.parametrize("fraction,shots,protocol,why", [
    (0.0, None, "linear", r"in \(0, 1\]"), (1.5, None, "linear", r"in \(0, 1\]"),
    (0.1, 2, "linear", "not both"), (0.1, None, "align", "does not train on labels")])
def test_a_limited_label_probe_refuses_what_it_cannot_do(tiny_digits: ImageSet, tiny_convnet: torch.nn.Module,
                                                         fraction: float, shots: int | None, protocol: str,
                                                         why: str) -> None:
    with pytest.raises(UsageError, match=why):
        evaluate(tiny_convnet, tiny_digits, protocol, fraction=fraction, shots=shots, teacher=tiny_convnet)
