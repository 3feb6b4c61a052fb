"""The validation split is held out of every step that makes an artifact: poison it, and the
teacher's inputs, the statistics, every method's set and the full row stay bit for bit the same
(issue 33); only the held-out signal, which scores it, changes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from ssdd_cli.bundle import load_bundle
from ssdd_cli.data import ImageSet, load_source
from ssdd_cli.data.splits import assemble
from ssdd_cli.distill.run import DistillRequest, run_distill
from ssdd_cli.train.full import pretrain_full
from ssdd_cli.train.recipe import PretrainConfig
from tests.distill.helpers import write_tiny_teacher

CPU = torch.device("cpu")
OPTIONS = {
    "ssdd": {"steps": 3, "batch_size": 64, "pool_size": 1, "pool_steps": 2},
    "krr-st": {"steps": 3, "batch_size": 64, "pool_size": 1, "pool_steps": 2},
    "random": {},
    "kmeans": {},
}


def poisoned(data: ImageSet) -> ImageSet:
    """The same source with other validation images (noise) and shuffled validation labels."""
    g = torch.Generator().manual_seed(1)
    labels = data.val_labels[torch.randperm(len(data.val), generator=g)] if data.val_labels is not None else None
    return replace(data, val=torch.rand(data.val.shape, generator=g), val_labels=labels)


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_teacher(tmp_path_factory.mktemp("t") / "teacher.safetensors")


def test_the_source_side_and_its_statistics_leave_validation_out() -> None:
    g = torch.Generator().manual_seed(0)
    train, test = torch.rand(40, 1, 8, 8, generator=g), torch.rand(10, 1, 8, 8, generator=g)
    labels = (torch.arange(40) % 4).numpy()
    clean = assemble("toy", train, labels, test, None, n_val=8)
    nan = assemble("toy", train, labels, test, None,
                   val=torch.full((8, 1, 8, 8), float("nan")), val_labels=labels[:8])
    assert torch.equal(clean.source, clean.train) and clean.source_labels is clean.train_labels
    assert len(clean.source) == 32 and len(clean.val) == 8
    assert nan.mean == pytest.approx(train.double().mean(dim=(0, 2, 3)).tolist())
    assert all(s > 0 for s in nan.std)


@pytest.mark.parametrize("method", list(OPTIONS))
def test_no_method_reads_the_validation_images(method: str, teacher: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    data = load_source("digits")
    sets = {}
    for name, source in (("clean", data), ("poisoned", poisoned(data))):
        monkeypatch.setattr("ssdd_cli.distill.run.load_source", lambda *a, _s=source, **k: _s)
        out = tmp_path / f"{name}.ssdd"
        run_distill(DistillRequest(source="digits", output=out, method=method, budget=10, teacher=teacher,
                                   options=dict(OPTIONS[method]), seed=0))
        sets[name] = load_bundle(out)
    clean, dirty = sets["clean"], sets["poisoned"]
    assert clean.tensors.keys() == dirty.tensors.keys()
    for key, tensor in clean.tensors.items():
        assert torch.equal(tensor, dirty.tensors[key]), key
    if method in ("ssdd", "krr-st"):  # the held-out signal does read them: the poison shows there
        assert clean.manifest.distill is not None and dirty.manifest.distill is not None
        assert clean.manifest.distill.held_out != dirty.manifest.distill.held_out


def test_the_full_row_does_not_read_the_validation_images(teacher: Path, one_thread: None) -> None:
    data = load_source("digits")
    config = PretrainConfig(arch="convnet", epochs=1, batch_size=256, seed=0, arch_kwargs={"widths": [8]})
    clean = pretrain_full(data, teacher, config, device=CPU).backbone.state_dict()
    dirty = pretrain_full(poisoned(data), teacher, config, device=CPU).backbone.state_dict()
    assert all(torch.equal(v, dirty[k]) for k, v in clean.items())


def test_a_given_teacher_without_the_record_gets_a_notice(tmp_path: Path) -> None:
    from ssdd_cli.models import load_backbone, save_backbone
    from ssdd_cli.models.store import STRUCTURAL_KEYS as STRUCTURAL
    from ssdd_cli.progress import ProgressEvent

    path = write_tiny_teacher(tmp_path / "old.safetensors")
    net, meta = load_backbone(path)
    save_backbone(path, net, {k: v for k, v in meta.items() if k not in STRUCTURAL and k != "ssdd.trained_on"})
    events: list[ProgressEvent] = []
    run_distill(DistillRequest(source="digits", output=tmp_path / "r.ssdd", method="random", budget=10,
                               teacher=path), events.append)
    assert any("may have seen the validation images" in (e.message or "") for e in events)
