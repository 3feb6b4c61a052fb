import importlib
from pathlib import Path

import pytest
import torch

from ssdd_cli.errors import CheckpointError, UsageError
from ssdd_cli.train.pretrain import pretrain
from ssdd_cli.train.recipe import PretrainConfig

CPU = torch.device("cpu")
TINY = {"widths": [8, 16]}


def _artifact(m: int = 24, d_y: int = 6, classes: int = 3) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(m, 1, 8, 8, generator=g)
    y = torch.randn(m, d_y, generator=g)
    labels = torch.arange(m) % classes
    return x, y, labels


def _config(epochs: int, **kw: object) -> PretrainConfig:
    base = dict(arch="convnet", epochs=epochs, batch_size=12, lr=0.05, weight_decay=1e-3,
                seed=0, arch_kwargs=TINY)
    base.update(kw)
    return PretrainConfig(**base)  # type: ignore[arg-type]


def test_mse_pretraining_reduces_loss() -> None:
    x, y, _ = _artifact()
    _, first = pretrain(x, y, None, _config(1), in_channels=1, image_size=8, device=CPU)
    backbone, last = pretrain(x, y, None, _config(10), in_channels=1, image_size=8, device=CPU)
    assert last < 0.5 * first
    assert not backbone.training
    assert backbone.features(x[:2]).shape == (2, backbone.feature_dim)


def test_cross_entropy_pretraining_reduces_loss() -> None:
    x, _, labels = _artifact()
    _, first = pretrain(x, None, labels, _config(1), in_channels=1, image_size=8, device=CPU)
    _, last = pretrain(x, None, labels, _config(10), in_channels=1, image_size=8, device=CPU)
    assert last < 0.5 * first


def test_same_seed_same_network_and_events() -> None:
    x, y, _ = _artifact()
    events: list[object] = []
    a, la = pretrain(x, y, None, _config(2), in_channels=1, image_size=8, device=CPU,
                     callback=events.append)
    b, lb = pretrain(x, y, None, _config(2), in_channels=1, image_size=8, device=CPU)
    assert la == lb
    pairs = zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    assert all(torch.equal(p, q) for p, q in pairs)
    assert [e.step for e in events] == [1, 2]  # type: ignore[attr-defined]


def test_a_long_epoch_reports_its_progress_within(monkeypatch: pytest.MonkeyPatch) -> None:
    """Within an epoch (here: every minibatch but the last), an event with the epochs done so far
    as a fraction; after it, the epoch's event with its loss, as before."""
    module = importlib.import_module("ssdd_cli.train.pretrain")
    monkeypatch.setattr(module, "EVERY_SECONDS", 0.0)
    x, y, _ = _artifact(m=36)  # three minibatches of 12 an epoch
    events: list[object] = []
    pretrain(x, y, None, _config(2), in_channels=1, image_size=8, device=CPU, callback=events.append)
    seen = [(e.step, e.total, sorted(e.metrics)) for e in events]  # type: ignore[attr-defined]
    assert seen == [(0, 2, ["epoch"]), (0, 2, ["epoch"]), (1, 2, ["loss"]),
                    (1, 2, ["epoch"]), (1, 2, ["epoch"]), (2, 2, ["loss"])]
    fractions = [e.metrics["epoch"] for e in events if "epoch" in e.metrics]  # type: ignore[attr-defined]
    assert fractions == pytest.approx([1 / 3, 2 / 3, 4 / 3, 5 / 3])


def test_resume_matches_uninterrupted_run(tmp_path: Path) -> None:
    x, y, _ = _artifact()
    ckpt = tmp_path / "run.ckpt"
    straight, loss = pretrain(x, y, None, _config(3), in_channels=1, image_size=8, device=CPU)
    # an interrupted run: 2 epochs written to the checkpoint, then resumed to 3
    pretrain(x, y, None, _config(2), in_channels=1, image_size=8, device=CPU,
             checkpoint_path=ckpt)
    with pytest.raises(CheckpointError, match="epochs = 2, but this run has 3"):  # another run's
        pretrain(x, y, None, _config(3), in_channels=1, image_size=8, device=CPU,
                 checkpoint_path=ckpt, resume=True)
    with pytest.raises(CheckpointError, match="other data"):
        pretrain(x, y * 2, None, _config(2), in_channels=1, image_size=8, device=CPU,
                 checkpoint_path=ckpt, resume=True)


def test_resume_continues_the_same_run(tmp_path: Path) -> None:
    x, y, _ = _artifact()
    ckpt = tmp_path / "run.ckpt"
    straight, loss = pretrain(x, y, None, _config(3), in_channels=1, image_size=8, device=CPU)

    class Stop(Exception):
        pass

    def stop_after_two(event: object) -> None:
        if getattr(event, "step", 0) == 2:
            raise Stop

    with pytest.raises(Stop):
        pretrain(x, y, None, _config(3), in_channels=1, image_size=8, device=CPU,
                 checkpoint_path=ckpt, callback=stop_after_two, checkpoint_seconds=0)
    # the event of epoch 2 fires before its checkpoint: the file holds epoch 1
    resumed, loss2 = pretrain(x, y, None, _config(3), in_channels=1, image_size=8, device=CPU,
                              checkpoint_path=ckpt, resume=True)
    assert loss2 == loss
    for p, q in zip(straight.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(p, q)


def test_images_that_do_not_fit_the_arch(monkeypatch: pytest.MonkeyPatch) -> None:
    x, y, _ = _artifact()
    x4 = x[:, :, :4, :4]
    with pytest.raises(UsageError, match="image_size must be at least"):  # refused when built
        pretrain(x4, y, None, _config(1, arch="alexnet", arch_kwargs={}), in_channels=1,
                 image_size=4, device=CPU)
    with pytest.raises(UsageError, match="unknown backbone"):
        pretrain(x, y, None, _config(1, arch="nope", arch_kwargs={}), in_channels=1,
                 image_size=8, device=CPU)

    # the package re-exports the function `pretrain`, so fetch the module itself
    module = importlib.import_module("ssdd_cli.train.pretrain")
    from ssdd_cli.models import create_backbone

    def broken(*args: object, **kwargs: object) -> object:
        net = create_backbone(*args, **kwargs)  # type: ignore[arg-type]

        def fail(_: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("mat1 and mat2 shapes cannot be multiplied (1x8 and 16x4)")

        net.features = fail  # type: ignore[method-assign]
        return net

    monkeypatch.setattr(module, "create_backbone", broken)
    with pytest.raises(UsageError, match=r"1×8×8 images do not fit arch 'convnet'"):
        pretrain(x, y, None, _config(1), in_channels=1, image_size=8, device=CPU)


def test_labelled_artifacts_take_the_dm_family_protocol() -> None:
    from ssdd_cli.kit.schedules import SCHEDULES
    from ssdd_cli.presets import get_preset

    cifar = get_preset("cifar100")
    dm = PretrainConfig.from_preset(cifar, budget=100, labelled=True)
    assert (dm.lr, dm.momentum, dm.weight_decay, dm.batch_size, dm.epochs) == (0.01, 0.9, 5e-4, 256, 1000)
    assert (dm.schedule, dm.augment) == ("step", "dsa")
    step = SCHEDULES.get("step")
    assert [step(e, 1000) for e in (0, 499, 500, 999)] == [1.0, 1.0, 0.1, 0.1]  # ×0.1 at half
    ssdd = PretrainConfig.from_preset(cifar, budget=100)
    assert (ssdd.lr, ssdd.weight_decay, ssdd.schedule, ssdd.augment) == (0.1, 1e-3, "constant", "none")
    given = PretrainConfig.from_preset(cifar, labelled=True, lr=0.05, weight_decay=0.0, schedule="cosine")
    assert (given.lr, given.weight_decay, given.schedule) == (0.05, 0.0, "cosine")
    with pytest.raises(UsageError, match="unknown pretraining augmentation 'mixup'"):
        PretrainConfig(augment="mixup")


def test_dsa_pretraining_augments_every_batch_and_still_learns() -> None:
    x, _, labels = _artifact()
    plain, _ = pretrain(x, None, labels, _config(3), in_channels=1, image_size=8, device=CPU)
    augmented, _ = pretrain(x, None, labels, _config(3, augment="dsa"), in_channels=1, image_size=8, device=CPU)
    again, _ = pretrain(x, None, labels, _config(3, augment="dsa"), in_channels=1, image_size=8, device=CPU)
    a, b, c = (net.state_dict() for net in (plain, augmented, again))
    assert any(not torch.equal(a[k], b[k]) for k in a)  # the augmentation changed the training
    assert all(torch.equal(b[k], c[k]) for k in b)  # and its draws are the seed's
    _, first = pretrain(x, None, labels, _config(1, augment="dsa"), in_channels=1, image_size=8, device=CPU)
    _, last = pretrain(x, None, labels, _config(15, augment="dsa"), in_channels=1, image_size=8, device=CPU)
    assert last < first


def test_without_decay_on_norms_and_biases_only_the_weights_decay() -> None:
    """A learning rate so small that the loss barely moves anything: with decay everywhere
    BatchNorm's γ shrinks like the convolutions; with decay_norm_bias=False γ keeps its norm."""
    x, y, _ = _artifact()
    kw = dict(lr=1e-6, weight_decay=1e4)  # lr·wd = 0.01 a step: decay dominates
    on, _ = pretrain(x, y, None, _config(3, **kw), in_channels=1, image_size=8, device=CPU)
    off, _ = pretrain(x, y, None, _config(3, decay_norm_bias=False, **kw), in_channels=1, image_size=8,
                      device=CPU)
    fresh, _ = pretrain(x, y, None, _config(1, lr=1e-12, weight_decay=0.0), in_channels=1, image_size=8,
                        device=CPU)
    params = {name: {n: p.detach() for n, p in net.named_parameters()}
              for name, net in (("on", on), ("off", off), ("fresh", fresh))}
    norms = [n for n, p in params["fresh"].items() if p.ndim == 1 and p.norm() > 0.1]  # γ: ones
    convs = [n for n, p in params["fresh"].items() if p.ndim == 4]
    assert norms and convs
    for n in norms:  # BatchNorm's γ: shrunk with decay everywhere, kept without
        start = params["fresh"][n].norm()
        assert params["on"][n].norm() < 0.95 * start
        assert float(params["off"][n].norm()) == pytest.approx(float(start), rel=1e-3)
    for n in convs:  # the convolutions decay in both
        start = params["fresh"][n].norm()
        assert params["on"][n].norm() < 0.95 * start and params["off"][n].norm() < 0.95 * start
    from ssdd_cli.presets import get_preset

    assert PretrainConfig.from_preset(get_preset("digits"), decay_norm_bias=False).decay_norm_bias is False
