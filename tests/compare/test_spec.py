"""A comparison from a TOML or YAML file and from the command line's options is one plan; bad
names and settings fail in one sentence before any work."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ssdd_cli.cli.compare import options_mapping
from ssdd_cli.cli.main import app
from ssdd_cli.compare import (
    ProtocolSpec,
    apply_setting,
    build_plan,
    load_config_file,
    merge,
    spec_from_mapping,
)
from ssdd_cli.errors import UsageError

runner = CliRunner()

TOML = """
source = "digits"
budgets = [10, 20]
archs = ["convnet", "resnet10"]
seeds = 2
protocols = ["linear", "linear@5shot", "knn", "align"]

[methods.ssdd]
steps = 300
[methods."ssdd@init"]
method = "ssdd"
steps = 0
[methods.random]

[pretrain]
epochs = 50
[eval.linear]
epochs = 20
"""

YAML = """
source: digits
budgets: [10, 20]
archs: [convnet, resnet10]
seeds: 2
protocols: [linear, linear@5shot, knn, align]
methods:
  ssdd: {steps: 300}
  ssdd@init: {method: ssdd, steps: 0}
  random: {}
pretrain: {epochs: 50}
eval:
  linear: {epochs: 20}
"""

OPTIONS = ["--source", "digits", "--budget", "10", "--budget", "20", "--methods", "ssdd,ssdd@init,random",
           "--archs", "convnet,resnet10", "--seeds", "2", "--protocols", "linear,linear@5shot,knn,align",
           "--set", "methods.ssdd.steps=300", "--set", "methods.ssdd@init.method=ssdd",
           "--set", "methods.ssdd@init.steps=0", "--set", "pretrain.epochs=50", "--set", "eval.linear.epochs=20"]


def from_options() -> dict[str, object]:
    raw = merge({}, options_mapping(source="digits", budgets=[10, 20], methods="ssdd,ssdd@init,random",
                                    archs="convnet,resnet10", seeds=2, protocols="linear,linear@5shot,knn,align"))
    for setting in ("methods.ssdd.steps=300", "methods.ssdd@init.method=ssdd", "methods.ssdd@init.steps=0",
                    "pretrain.epochs=50", "eval.linear.epochs=20"):
        raw = apply_setting(raw, setting)
    return raw


def test_file_and_options_give_the_same_plan(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text(TOML)
    (tmp_path / "c.yaml").write_text(YAML)
    plans = [build_plan(spec_from_mapping(raw)) for raw in
             (load_config_file(tmp_path / "c.toml"), load_config_file(tmp_path / "c.yaml"), from_options())]
    assert plans[0] == plans[1] == plans[2]
    spec = plans[0].spec
    assert [(e.name, e.method, dict(e.options)) for e in spec.methods] == [
        ("ssdd", "ssdd", {"steps": 300}), ("ssdd@init", "ssdd", {"steps": 0}), ("random", "random", {})]
    assert spec.protocols[1] == ProtocolSpec("linear", 5) and spec.budgets == (10, 20)
    # 1 teacher; 2 archs × 2 seeds random inits and full rows; 2 budgets × 3 entries × 2 seeds
    # artifacts, each pretrained on 2 archs; every backbone (24 + 4 inits + 4 full + the teacher at
    # 2 seeds) × 4 protocols
    assert [plans[0].count(k) for k in ("teacher", "init", "full", "distill", "pretrain", "eval")] == [
        1, 4, 4, 12, 24, 136]


def test_cli_dry_run_prints_the_same_plan_from_a_file_and_from_options(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text(TOML)
    (tmp_path / "c.yml").write_text(YAML)
    out = tmp_path / "never-written"
    runs = [runner.invoke(app, ["compare", "--dry-run", "-o", str(out), *args])
            for args in (["-c", str(tmp_path / "c.toml")], ["-c", str(tmp_path / "c.yml")], OPTIONS)]
    for result in runs:
        assert result.exit_code == 0, result.output
    assert runs[0].output == runs[1].output == runs[2].output
    assert "181 steps" in runs[0].output and "ssdd@init (ssdd, steps=0)" in runs[0].output
    assert not out.exists()


def test_options_override_the_file_and_pick_its_entries(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text(TOML)
    raw = merge(load_config_file(tmp_path / "c.toml"), options_mapping(methods="ssdd@init,kmeans", seeds=3))
    spec = spec_from_mapping(apply_setting(raw, "pretrain.epochs=7"))
    assert [(e.name, e.method, dict(e.options)) for e in spec.methods] == [
        ("ssdd@init", "ssdd", {"steps": 0}), ("kmeans", "kmeans", {})]
    assert spec.seeds == 3 and spec.pretrain == {"epochs": 7} and spec.archs == ("convnet", "resnet10")


def test_archs_from_the_options_narrow_the_files_arch_options() -> None:
    file = {"source": "digits", "archs": ["convnet", "resnet10"], "arch_options": {"resnet10": {"width": 16}}}
    assert spec_from_mapping(merge(file, options_mapping(archs="convnet"))).archs == ("convnet",)
    kept = spec_from_mapping(merge(file, options_mapping(archs="resnet10")))
    assert kept.arch_options == {"resnet10": {"width": 16}}
    with pytest.raises(UsageError, match="not among the comparison's archs"):  # a typo in a file still is
        spec_from_mapping({**file, "archs": ["convnet"]})


def test_defaults_are_the_issue_grid_on_the_preset_budget() -> None:
    spec = spec_from_mapping({"source": "digits"})
    assert [e.name for e in spec.methods] == ["ssdd", "krr-st", "random", "kmeans"]
    assert spec.budgets == (20,) and spec.archs == ("convnet",) and spec.seeds == 3
    assert spec.targets == ("digits",) and [p.label for p in spec.protocols] == ["linear"]


@pytest.mark.parametrize(("raw", "needle", "option"), [
    ({"source": "digitz"}, "unknown source 'digitz'", "source"),
    ({"source": "digits", "methods": ["ssdd", "nope"]}, "unknown method 'nope'", "method"),
    ({"source": "digits", "archs": ["convnet", "resnet99"]}, "unknown backbone 'resnet99'", "arch"),
    ({"source": "digits", "protocols": ["linear", "lineer"]}, "unknown protocol 'lineer'", "protocol"),
    ({"source": "digits", "protocols": ["align@5shot"]}, "the align protocol takes no shots", "protocols"),
    ({"source": "digits", "protocols": ["knn@5"]}, "cannot read protocol 'knn@5'", "protocols"),
    ({"source": "digits", "targets": ["cifar11"]}, "unknown source 'cifar11'", "source"),
    ({"source": "digits", "methods": {"random": {"steps": 3}}}, "does not take; it takes: count_targets",
     "methods"),
    ({"source": "digits", "methods": {"a.b": {"method": "ssdd"}}}, "no dots or slashes", "methods"),
    ({"source": "digits", "seeds": 0}, "seeds is invalid", "seeds"),
    ({"source": "digits", "pretrain": {"epoch": 3}}, "pretrain.epoch is invalid", "pretrain"),
    ({"source": "digits", "budgets": [20, 20]}, "budgets lists 20 twice", "budgets"),
    ({"source": "digits", "eval": {"lineer": {}}}, "unknown protocol 'lineer'", "protocol"),
    ({"source": "digits", "split": "train"}, "split is invalid", "split"),
    ({"source": "digits", "precision": "fp16"}, "precision is invalid", "precision"),
    ({"source": "digits", "arch_options": {"resnet10": {"width": 16}}}, "not among the comparison's archs",
     "arch_options"),
    ({"source": "digits", "archs": ["resnet10"], "arch_options": {"resnet10": {"depth": 3}}},
     "sets 'depth', which resnet10 does not take", "arch_options"),
    ({"source": "digits", "methods": {"r": {"method": "random", "target_scaling": "whitened"}}},
     "sets target_scaling 'whitened'; choose one of: standardized, raw", "methods"),
    ({"source": "digits", "methods": {"dm": {"target_scaling": "raw"}}},
     "method 'dm' regresses no teacher targets", "methods"),
])
def test_bad_names_fail_in_one_sentence(raw: dict[str, object], needle: str, option: str) -> None:
    with pytest.raises(UsageError) as info:
        spec_from_mapping(raw)
    assert needle in str(info.value) and info.value.option == option


def test_a_validation_screen_scores_the_val_split_and_plans_no_full_row_when_asked() -> None:
    from ssdd_cli.compare.steps import StepContext
    from ssdd_cli.data import load_source

    spec = spec_from_mapping({"source": "digits", "split": "val", "full": False,
                              "methods": {"r": {"method": "random", "target_scaling": "raw"}}})
    assert spec.split == "val" and spec.methods[0].target_scaling == "raw"
    assert build_plan(spec).count("full") == 0 and build_plan(spec_from_mapping({"source": "digits"})).count("full") == 3
    data, seen = load_source("digits"), StepContext(spec).target("digits")
    assert seen.test is not data.test and seen.test.shape == data.val.shape
    assert (seen.test == data.val).all() and (seen.test_labels == data.val_labels).all()  # type: ignore[operator]
    assert (seen.train == data.train).all()


def test_arch_options_reach_every_network_of_that_arch() -> None:
    from ssdd_cli.compare.steps import StepContext, pretrain_config

    spec = spec_from_mapping({"source": "digits", "archs": ["convnet", "resnet10"], "methods": ["random"],
                              "arch_options": {"resnet10": {"width": 16}}})
    ctx = StepContext(spec)
    for step in build_plan(spec):
        if step.kind in ("init", "full", "pretrain"):
            kwargs = pretrain_config(ctx, step).arch_kwargs
            assert kwargs.get("width") == (16 if step.cell.arch == "resnet10" else None)


def test_bad_files_fail_in_one_sentence(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text("source = digits\n")
    (tmp_path / "bad.yaml").write_text("source: [digits\n")
    (tmp_path / "list.yaml").write_text("- digits\n")
    (tmp_path / "c.json").write_text("{}")
    for name, needle in (("bad.toml", "is not valid TOML"), ("bad.yaml", "is not valid YAML at line"),
                         ("list.yaml", "does not hold a mapping"), ("c.json", "ends in .toml, .yaml or .yml"),
                         ("missing.toml", "cannot read")):
        with pytest.raises(UsageError, match=needle):
            load_config_file(tmp_path / name)


def test_cli_errors_come_before_any_work(tmp_path: Path) -> None:
    out = tmp_path / "results"
    result = runner.invoke(app, ["compare", "--source", "digits", "--methods", "ssdd,nope", "-o", str(out)])
    assert result.exit_code == 2 and "unknown method 'nope'" in result.output
    assert [line for line in result.output.splitlines() if line.startswith("error:")] and not out.exists()
    result = runner.invoke(app, ["compare", "-o", str(out)])
    assert result.exit_code == 2 and "--source: a comparison needs a source" in result.output
    # a method setting that cannot work is refused by the method's config before any training
    result = runner.invoke(app, ["compare", "--source", "digits", "--methods", "ssdd", "--set",
                                 "methods.ssdd.steps=-1", "-o", str(out), "--device", "cpu"])
    assert result.exit_code == 2 and "method entry 'ssdd': the number of outer steps cannot be negative" \
        in result.output.replace("\n", " ")
    assert not list((out / "steps").rglob("*")) if out.exists() else True


def test_an_unwritable_output_fails_before_any_work(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    result = runner.invoke(app, ["compare", "--source", "digits", "-o", str(blocker), "--device", "cpu"])
    assert result.exit_code == 2 and "is a file" in result.output  # refused while parsing
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        result = runner.invoke(app, ["compare", "--source", "digits", "-o", str(locked / "r"), "--device", "cpu"])
        assert result.exit_code == 1 and "cannot create the results folder" in result.output


def test_other_commands_do_not_import_matplotlib_or_yaml() -> None:
    code = ("import sys, ssdd_cli.cli.main, ssdd_cli.compare; "
            "print(sorted(m for m in ('matplotlib', 'yaml') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_values_from_a_file_are_typed_by_the_field_they_set() -> None:
    from ssdd_cli.compare.steps import StepContext, distill_config, protocol_config

    spec = spec_from_mapping({"source": "digits", "methods": {"ssdd": {"steps": "30", "lr": 1},
                                                              "bad": {"method": "krr-st", "steps": "abc"}},
                              "eval": {"align": {"ridges": [0.1, 1]}, "linear": {"epochs": "x", "lr": 1}}})
    ctx = StepContext(spec)
    config = distill_config(ctx, spec.methods[0], 20, 128)
    assert config.outer.steps == 30 and isinstance(config.outer.lr, float)  # 1 and 1.0: one key
    assert protocol_config(ctx, "align").ridges == (0.1, 1.0)
    with pytest.raises(UsageError, match="method entry 'bad': steps = 'abc' is invalid"):
        distill_config(ctx, spec.methods[1], 20, 128)
    with pytest.raises(UsageError, match="the linear protocol: epochs = 'x' is invalid") as info:
        protocol_config(ctx, "linear")
    assert info.value.option == "eval"
    with pytest.raises(UsageError, match="the knn protocol has no setting 'kk'; it takes: k, temperature"):
        protocol_config(StepContext(spec_from_mapping({"source": "digits", "eval": {"knn": {"kk": 3}}})), "knn")


def test_the_example_comparison_file_plans() -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "compare-digits.toml"
    plan = build_plan(spec_from_mapping(load_config_file(example)))
    assert [e.name for e in plan.spec.methods] == ["ssdd", "ssdd@init", "krr-st", "random", "kmeans"]
    assert plan.count("distill") == 15 and plan.count("pretrain") == 30


def test_the_benchmark_comparison_file_plans_each_method_beside_its_initialisation() -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "compare-benchmark.toml"
    plan = build_plan(spec_from_mapping(load_config_file(example)))
    assert plan.spec.source == "digits-nuisance"
    assert [e.name for e in plan.spec.methods] == ["ssdd", "ssdd@init", "krr-st", "random", "kmeans"]
    assert plan.count("distill") == 15 and plan.count("pretrain") == 30 and plan.count("full") == 6


def test_dm_family_artifacts_pretrain_under_their_protocol() -> None:
    from ssdd_cli.compare.steps import StepContext, pretrain_config

    spec = spec_from_mapping({"source": "digits", "budgets": [20], "methods": {"dm": {}, "random": {}}})
    pretrains = {s.cell.method: s for s in build_plan(spec) if s.kind == "pretrain"}
    dm, ssl = (pretrain_config(StepContext(spec), pretrains[m]) for m in ("dm", "random"))
    assert (dm.lr, dm.weight_decay, dm.schedule, dm.augment) == (0.01, 5e-4, "step", "dsa")
    assert (ssl.lr, ssl.schedule, ssl.augment) == (0.1, "constant", "none")


def test_classify_is_planned_on_the_artifacts_that_keep_labels_only() -> None:
    spec = spec_from_mapping({"source": "digits", "budgets": [20], "seeds": 2, "protocols": ["knn", "classify"],
                              "methods": {"dm": {}, "random": {"per_class": True}, "ssdd": {}}})
    plan = build_plan(spec)
    classify = [s for s in plan if s.kind == "eval" and s.cell.protocol is not None
                and s.cell.protocol.name == "classify"]
    assert sorted((s.cell.row, s.cell.seed) for s in classify) == [("dm", 0), ("dm", 1), ("random", 0), ("random", 1)]
    assert all(s.inputs == (("artifact", f"distill/{s.cell.row}/N20/seed{s.cell.seed}"),) and s.cell.arch is None
               and s.cell.target == "digits" for s in classify)
    # No backbone is classified: the references and pretrained backbones get the probes only.
    assert not [s for s in plan if s.kind == "eval" and "backbone" in dict(s.inputs)
                and s.cell.protocol is not None and s.cell.protocol.name == "classify"]


def test_a_classify_only_comparison_pretrains_nothing() -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "compare-fashion-classify.toml"
    plan = build_plan(spec_from_mapping(load_config_file(example)))
    assert (plan.count("distill"), plan.count("eval"), plan.count("pretrain"), plan.count("init"),
            plan.count("full")) == (27, 27, 0, 0, 0)
    fashion = build_plan(spec_from_mapping(load_config_file(example.with_name("compare-fashion.toml"))))
    assert fashion.spec.source == "fashion-mnist" and fashion.count("distill") == 21


def test_pretrain_epochs_do_not_change_the_full_row_but_full_steps_do() -> None:
    from ssdd_cli.compare.steps import StepContext, pretrain_config

    def full(raw: dict[str, Any]) -> Any:
        spec = spec_from_mapping({"source": "digits", "methods": ["random"], "seeds": 1, **raw})
        step = next(s for s in build_plan(spec) if s.kind == "full")
        return pretrain_config(StepContext(spec), step)

    default = full({})
    assert full({"pretrain": {"epochs": 7}}) == default  # the artifacts' epochs only
    assert default.epochs == 167  # digits' 1,294 training images: 6 minibatches an epoch, 1,002 steps
    assert full({"full_steps": 12}).epochs == 2
    assert full({"pretrain": {"lr": 0.05}}).lr == 0.05  # the rest of the recipe is the artifacts'
    assert full({"pretrain": {"augment": "dsa"}}).augment == "dsa"
    with pytest.raises(UsageError, match="augment"):
        full({"pretrain": {"augment": "rotate"}})


def test_cli_dry_run_names_the_full_rows_steps(tmp_path: Path) -> None:
    result = runner.invoke(app, ["compare", "--dry-run", "--source", "digits", "-o", str(tmp_path / "r"),
                                 "--set", "full_steps=100"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "102 SGD steps" in text and "17 epochs" in text


def test_a_limited_label_protocol_reads_as_a_percentage_of_the_labels() -> None:
    from ssdd_cli.compare.protocol import ProtocolSpec

    one, ten = ProtocolSpec.parse("linear@1%"), ProtocolSpec.parse("knn@10%")
    assert (one.name, one.percent, one.fraction, one.label) == ("linear", 1.0, 0.01, "linear@1%")
    assert (ten.name, ten.fraction, ten.label, ten.draws_labels) == ("knn", 0.1, "knn@10%", True)
    assert ProtocolSpec.parse("linear@0.5%").label == "linear@0.5%"
    assert not ProtocolSpec.parse("linear").draws_labels and ProtocolSpec.parse("linear@5shot").draws_labels
    for bad, why in (("align@1%", "does not train on labels"), ("linear@0%", r"\(0, 100\]"),
                     ("linear@150%", r"\(0, 100\]"), ("linear@1%@2shot", "cannot read")):
        with pytest.raises(UsageError, match=why):
            ProtocolSpec.parse(bad)
