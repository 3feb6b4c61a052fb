"""Every comparison file shipped in examples/ reads into a valid comparison (no run)."""

from pathlib import Path

import pytest

from ssdd_cli.compare.config_file import load_config_file
from ssdd_cli.compare.spec import spec_from_mapping

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").rglob("*.toml"))


def test_the_examples_are_found() -> None:
    names = {path.name for path in EXAMPLES}
    assert {"compare-benchmark.toml", "weight-decay.toml", "views-and-schedule.toml"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_each_example_is_a_valid_comparison(path: Path) -> None:
    spec = spec_from_mapping(load_config_file(path))
    assert spec.methods and spec.budgets and spec.seeds >= 1
    if path.parent.name == "validation":  # settings are chosen on the validation split only
        assert spec.split == "val"
