"""`ssdd compare`: run or reuse every step of a methods × archs × seeds × protocols grid.

    spec = spec_from_mapping(load_config_file("compare.toml"))   # or a mapping of options
    run = run_compare(build_plan(spec), Path("results"), device="cpu", callback=on_event)
    write_results(run)        # results.json, results.md
    write_plots(run)          # plots/*.png

Modules: `config_file` (a TOML/YAML file and the command line's overrides), `spec` (what is
asked, validated), `protocol` (a protocol as a comparison names it), `typed` (file values typed
by the field they set), `plan` (the DAG of steps),
`store` (content-addressed step folders), `steps` (what each kind of step is keyed by and how it
runs), `runner` (checks, then runs or reuses), `summary` (the cells, mean ± std over seeds),
`differences` (paired by seed, with 95% intervals), `report` (JSON and the Markdown), `plots`
(PNG, matplotlib).
"""

from ssdd_cli.compare.config_file import apply_setting, load_config_file, merge
from ssdd_cli.compare.plan import Cell, Plan, Step, build_plan
from ssdd_cli.compare.plots import write_plots
from ssdd_cli.compare.protocol import ProtocolSpec
from ssdd_cli.compare.report import results_markdown, write_results
from ssdd_cli.compare.runner import CompareRun, Outcome, check, run_compare
from ssdd_cli.compare.spec import CompareSpec, MethodEntry, spec_from_mapping
from ssdd_cli.compare.store import StepRecord, StepStore, step_key
from ssdd_cli.compare.summary import Summary, summarize

__all__ = [
    "Cell",
    "CompareRun",
    "CompareSpec",
    "MethodEntry",
    "Outcome",
    "Plan",
    "ProtocolSpec",
    "Step",
    "StepRecord",
    "StepStore",
    "Summary",
    "apply_setting",
    "build_plan",
    "check",
    "load_config_file",
    "merge",
    "results_markdown",
    "run_compare",
    "spec_from_mapping",
    "step_key",
    "summarize",
    "write_plots",
    "write_results",
]
