"""`classify`: fresh networks trained with cross-entropy on a labelled set, scored on the target's
test split; the DM papers' recipe; refusals of sets without labels."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from ssdd_cli.bundle import load_bundle
from ssdd_cli.cli.main import app
from ssdd_cli.data import ImageSet, normalize
from ssdd_cli.errors import DataError
from ssdd_cli.train.classify import classify
from ssdd_cli.train.protocols import ClassifyConfig
from tests.distill.helpers import write_tiny_teacher

runner = CliRunner()
TINY = ClassifyConfig(epochs=30, width=8)


def test_classify_learns_from_a_labelled_set(tiny_digits: ImageSet) -> None:
    images = normalize(tiny_digits.train, tiny_digits.mean, tiny_digits.std)
    labels = tiny_digits.train_labels
    report = classify(images, labels, tiny_digits, config=TINY, seeds=2)
    acc = report.metrics[0]
    assert report.protocol == "classify" and acc.name == "accuracy" and len(acc.values) == 2
    assert acc.mean > 0.5  # 200 labelled digits teach a small ConvNet far above chance (0.1)
    assert report.config["epochs"] == 30 and report.config["lr"] == 0.01 and report.config["augment"] == "dsa"
    # Shuffled labels teach nothing that transfers.
    shuffled = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))]
    assert classify(images, shuffled, tiny_digits, config=TINY).metrics[0].mean < acc.mean - 0.2


def test_the_recipe_is_the_dm_papers() -> None:
    config = ClassifyConfig()
    training = config.training(28, seed=3)
    assert (config.epochs, config.batch_size, training.lr, training.momentum, training.weight_decay) == \
        (1000, 256, 0.01, 0.9, 5e-4)
    assert (training.schedule, training.augment, training.seed) == ("step", "dsa", 3)
    assert training.arch_kwargs == {"widths": (128, 128, 128), "norm": "in"}  # DC's ConvNet-3 at 28 px


def test_a_set_without_labels_is_refused(tiny_digits: ImageSet) -> None:
    with pytest.raises(DataError, match="has no class labels"):
        classify(tiny_digits.train, None, tiny_digits, what="artifact x.ssdd", config=TINY)


def test_classify_a_per_class_random_selection_through_the_cli(tmp_path: Path, one_thread: None) -> None:
    teacher = write_tiny_teacher(tmp_path / "teacher.safetensors")
    art = tmp_path / "random.ssdd"
    done = runner.invoke(app, ["distill", "--source", "digits", "--method", "random", "--budget", "20",
                               "--per-class", "--teacher", str(teacher), "-o", str(art), "--device", "cpu"])
    assert done.exit_code == 0, done.output
    bundle = load_bundle(art)
    assert bundle.manifest.raw is not None and bundle.manifest.raw.labels
    assert bundle.tensors["labels"].bincount().tolist() == [2] * 10  # 2 of each class
    out = tmp_path / "classify.json"
    ev = runner.invoke(app, ["eval", str(art), "--protocol", "classify", "--classify-epochs", "2",
                             "--seeds", "2", "--device", "cpu", "--json", str(out)])
    assert ev.exit_code == 0, ev.output
    assert "classify" in ev.output and "accuracy" in ev.output and out.is_file()

    # An artifact without labels, and classify beside a backbone protocol: one sentence each.
    golden = Path(__file__).resolve().parents[2] / "formats" / "golden" / "v1-ssdd.ssdd"
    bad = runner.invoke(app, ["eval", str(golden), "--protocol", "classify"])
    assert bad.exit_code == 1 and "Traceback" not in bad.output
    assert "stores no class labels" in " ".join(bad.output.split())
    mixed = runner.invoke(app, ["eval", str(art), "--protocol", "classify,knn", "--target", "digits"])
    assert mixed.exit_code != 0 and "two `ssdd eval` calls" in " ".join(mixed.output.split())
