"""Benchmarks (`ssdd bench`): the outer step at a preset's shape, and the precision probe."""

from ssdd_cli.bench.probe import ProbeRow, probe_throughput
from ssdd_cli.bench.step import BenchConfig, BenchReport, BenchRow, run_bench

__all__ = ["BenchConfig", "BenchReport", "BenchRow", "ProbeRow", "probe_throughput", "run_bench"]
